"""Shared fixtures: one workdir per session with ERM and Mixup defenses trained once on digits."""
from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("BENCH_WORKDIR", "/nonexistent-do-not-use")  # tests always pass a workdir explicitly
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


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
