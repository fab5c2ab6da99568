"""Many evaluations at once: sweeps (local or Ray) and convergence grids."""
