"""The training side: datasets, models, the training loop, weight caches and checkpoints, the model zoo, and the runner that trains and evaluates."""
