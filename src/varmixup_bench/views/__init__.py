"""What people read: leaderboards, the headline view, plots, reports, gradient-masking diagnostics, exports."""
