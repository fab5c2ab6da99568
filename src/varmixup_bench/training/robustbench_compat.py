"""The one place where robustbench 1.1.1 is patched so that it imports on today's stack.

robustbench 1.1.1 (the release on PyPI) has two import-time breakages, both shown by tests/test_robustbench.py:
  * `robustbench.eval` does `from autoattack import AutoAttack` and `from autoattack.state import EvaluationState`,
    but no registry package provides a module `autoattack`: the package robustbench itself depends on,
    pyautoattack, ships it as `pyautoattack`, with keyword-only arguments (`batch_size=` where robustbench passes
    `bs=`) and without robustbench's `log_path=` argument;
  * `robustbench.loaders` does `import pkg_resources`, which setuptools >= 81 no longer ships.
`import_robustbench()` registers an `autoattack` alias module that adapts those call differences, and (only
when setuptools has no `pkg_resources`) a minimal `pkg_resources.resource_filename`, then imports robustbench.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import types
import warnings
from pathlib import Path
from typing import Any

from varmixup_bench.core.errors import BenchError

INSTALL_HINT = "pip install 'varmixup-bench[robustbench]' (robustbench==1.1.1)"


def _autoattack_alias() -> types.ModuleType:
    """A module named `autoattack` whose AutoAttack accepts robustbench's call signature."""
    import pyautoattack
    import pyautoattack.state

    class AutoAttack(pyautoattack.AutoAttack):
        """pyautoattack.AutoAttack taking the original package's `log_path` (a log file) and `bs` (batch size)."""

        def __init__(self, model, norm: str = "Linf", eps: float = 0.3, version: str = "standard",
                     attacks_to_run=None, device="cpu", seed=None, log_path: str | None = None, **kwargs: Any) -> None:
            super().__init__(model, norm=norm, eps=eps, version=version, device=device, seed=seed,
                             attacks=attacks_to_run if attacks_to_run else None, **kwargs)
            if log_path is not None:
                self.logger.addHandler(logging.FileHandler(log_path))

        def run_standard_evaluation(self, x_orig, y_orig, bs: int = 250, return_labels: bool = False,
                                    state_path: Path | None = None):
            """The original's signature and return value: x_adv, or (x_adv, y_adv) with return_labels."""
            x_adv, y_adv = super().run_standard_evaluation(
                x_orig, y_orig, batch_size=bs, state_path=Path(state_path) if state_path is not None else None)
            return (x_adv, y_adv) if return_labels else x_adv

    module = types.ModuleType("autoattack", "alias of pyautoattack with the original autoattack call signature "
                                            "(installed by varmixup_bench.training.robustbench_compat)")
    module.AutoAttack = AutoAttack
    module.state = pyautoattack.state
    module.__path__ = []  # a package, so that `import autoattack.state` resolves through sys.modules
    return module


def _pkg_resources_shim() -> types.ModuleType:
    """`pkg_resources.resource_filename` on importlib.resources: all robustbench uses of the removed module."""
    from importlib.resources import files

    def resource_filename(module_name: str, resource_name: str) -> str:
        spec = importlib.util.find_spec(module_name)
        is_package = spec is not None and spec.submodule_search_locations is not None
        return str(files(module_name if is_package else module_name.rpartition(".")[0]) / resource_name)

    module = types.ModuleType("pkg_resources", "minimal stand-in installed by varmixup_bench.training.robustbench_compat")
    module.resource_filename = resource_filename
    return module


def install_shims() -> None:
    """Register the `autoattack` alias (always) and the `pkg_resources` stand-in (only if setuptools lacks it)."""
    if "autoattack" not in sys.modules:
        alias = _autoattack_alias()
        sys.modules["autoattack"] = alias
        sys.modules["autoattack.state"] = alias.state
    try:
        importlib.import_module("pkg_resources")
    except ImportError:
        sys.modules["pkg_resources"] = _pkg_resources_shim()


def import_robustbench() -> types.ModuleType:
    """robustbench, imported with the shims in place; a one-line error when it is not installed."""
    missing = [name for name in ("robustbench", "pyautoattack") if importlib.util.find_spec(name) is None]
    if missing:
        raise BenchError(f"RobustBench models need {' and '.join(missing)}, not installed: {INSTALL_HINT}")
    install_shims()
    with warnings.catch_warnings():  # its dependencies' import-time deprecation notices are not the user's concern
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import robustbench
        import robustbench.eval  # noqa: F401  (the module that needs the autoattack alias)
        import robustbench.utils  # noqa: F401

    return robustbench
