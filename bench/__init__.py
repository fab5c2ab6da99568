"""varmixup-bench: train robustness defenses, attack them, and keep trustworthy records of the numbers."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["train", "evaluate", "load_dataset", "__version__"]


def __getattr__(name: str):
    # the Python API, imported lazily so `bench --help` does not pay for torch
    if name in ("train", "evaluate"):
        from bench import runner

        return getattr(runner, name)
    if name == "load_dataset":
        from bench.data import load_dataset

        return load_dataset
    raise AttributeError(name)
