"""varmixup-bench: train robustness defenses, attack them, and keep trustworthy records of the numbers.

The public API, imported lazily so `bench --help` does not pay for torch:

- `train`, `evaluate`, `load_dataset`: train (or load) a defense, attack it, load a dataset;
- `Recipe`, `InferenceRule`, `Attack`, `Measurement`, `TrainContext`: the base classes a plug-in subclasses
  (`Measurement`: an evaluation without an adversary);
- `ResultStore`: the records of a workdir.
"""
from __future__ import annotations

__version__ = "0.1.0"

_API = {
    "train": "varmixup_bench.training.runner",
    "evaluate": "varmixup_bench.training.runner",
    "load_dataset": "varmixup_bench.training.data",
    "Recipe": "varmixup_bench.defenses.base",
    "InferenceRule": "varmixup_bench.defenses.base",
    "TrainContext": "varmixup_bench.defenses.base",
    "Attack": "varmixup_bench.attacks.base",
    "Measurement": "varmixup_bench.attacks.base",
    "ResultStore": "varmixup_bench.results.store",
}
__all__ = [*_API, "__version__"]


def __getattr__(name: str):
    if name in _API:
        from importlib import import_module

        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'varmixup_bench' has no attribute {name!r}")
