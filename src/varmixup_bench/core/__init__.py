"""Plumbing every part shares: user-facing errors, registries, atomic files and locks, progress bars, the workdir, value parsing."""
