"""Developer benchmarks (`bench perf`): the harness against plain PyTorch baselines."""
