"""Shared fixtures: one workdir per session with ERM and Mixup defenses trained once on digits."""
from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("BENCH_WORKDIR", "/nonexistent-do-not-use")  # tests always pass a workdir explicitly
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

CACHE_ENV_VAR = "BENCH_CACHE_DIR"
_shared_cache: list = []  # the session's shared weight cache, for the summary line


@pytest.fixture(scope="session", autouse=True)
def shared_weight_cache(tmp_path_factory):
    """One weight cache for every store of the session: a fresh workdir reuses the models and VAEs that another
    test already trained with the same settings (the user's own $BENCH_CACHE_DIR is never touched)."""
    root = tmp_path_factory.mktemp("weight-cache")
    before = os.environ.get(CACHE_ENV_VAR)
    os.environ[CACHE_ENV_VAR] = str(root)
    _shared_cache.append(root)
    yield root
    if before is None:
        os.environ.pop(CACHE_ENV_VAR, None)
    else:
        os.environ[CACHE_ENV_VAR] = before


@pytest.fixture()
def private_cache(monkeypatch):
    """For the tests that train on purpose (kills during training, truncated weights, counts of weight files,
    `trained` flags): the weights live inside the test's own workdir again, as without $BENCH_CACHE_DIR."""
    monkeypatch.delenv(CACHE_ENV_VAR, raising=False)


def pytest_terminal_summary(terminalreporter):
    for root in _shared_cache:
        counts = {kind: len(list((root / kind).glob("*/weights.safetensors"))) for kind in ("models", "vaes")}
        terminalreporter.write_line(f"shared weight cache: {counts['models']} models and {counts['vaes']} VAEs "
                                    f"trained into {root}")


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("workdir")


@pytest.fixture(scope="session")
def digits():
    from varmixup_bench.training.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def erm(workdir, digits):
    import varmixup_bench as bench

    return bench.train("erm", digits, workdir=workdir, epochs=15, show_progress=False)


@pytest.fixture(scope="session")
def mixup_mi(workdir, digits):
    import varmixup_bench as bench

    return bench.train("mixup+mi", digits, workdir=workdir, epochs=15, show_progress=False)
