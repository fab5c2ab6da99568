"""Crash safety, concurrency, safe loading and plug-ins, exercised with real processes and real files."""
from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import varmixup_bench as bench
from varmixup_bench.core.errors import BenchError

BENCH = [sys.executable, "-m", "varmixup_bench.cli"]


def _records(wd: Path) -> list[dict]:
    from varmixup_bench.results.store import ResultStore

    return ResultStore(wd).records()


def test_sigkill_during_training_resumes_from_last_epoch_with_one_record(tmp_path, private_cache):
    wd = tmp_path / "wd"
    cmd = BENCH + ["run", "--defense", "mixup", "--epochs", "40", "--workdir", str(wd), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    ckpts = []
    while time.time() < deadline and not ckpts:
        ckpts = list(wd.glob("models/*/checkpoint.safetensors"))
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpts and not list(wd.glob("models/*/weights.safetensors")) and _records(wd) == []
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming mixup from its last checkpoint" in done.stderr
    meta = json.loads(next(wd.glob("models/*/meta.json")).read_text())
    assert [h["epoch"] for h in meta["history"]] == list(range(1, 41))
    assert len(_records(wd)) == 1 and not list(wd.glob("models/*/checkpoint.safetensors"))


def test_two_concurrent_runs_lose_nothing_and_train_once(tmp_path, private_cache):
    wd = tmp_path / "wd"
    procs = [subprocess.Popen(BENCH + ["run", "--defense", "erm", "--attack", a, "--epochs", "5", "--workdir", str(wd),
                                       "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for a in ("clean,pgd10", "pgd50,fgsm")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    recs = _records(wd)
    assert sorted(r["attack"] for r in recs) == ["clean", "fgsm", "pgd10", "pgd50"]
    assert sum("trained" in err and "loaded" not in err for _, err in outs) == 1  # the other waited and loaded
    assert len(list(wd.glob("models/*/weights.safetensors"))) == 1


def _train_small(wd):
    return bench.train("erm", "digits", workdir=wd, epochs=1, show_progress=False)


def test_truncated_weights_give_a_clear_error(tmp_path, private_cache):
    d = _train_small(tmp_path)
    w = tmp_path / "models" / d.info["config_hash"] / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(BenchError, match="unreadable.*delete the folder to retrain"):
        _train_small(tmp_path)


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {_Payload.marker}",))


def test_planted_pickle_is_refused_and_never_executed(tmp_path, private_cache):
    d = _train_small(tmp_path)
    w = tmp_path / "models" / d.info["config_hash"] / "weights.safetensors"
    _Payload.marker = str(tmp_path / "pwned")
    w.write_bytes(pickle.dumps({"net.0.weight": _Payload()}))
    with pytest.raises(BenchError, match="unreadable"):
        _train_small(tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_metadata_of_another_key_is_refused(tmp_path, private_cache):
    d = _train_small(tmp_path)
    meta = tmp_path / "models" / d.info["config_hash"] / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "key": "0000000000000000"}))
    with pytest.raises(BenchError, match="do not belong to key"):
        _train_small(tmp_path)


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    target = tmp_path_factory.mktemp("plugin-site")
    src = Path(__file__).parent / "plugins" / "example_plugin"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--target", str(target), str(src)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return target


def _with_plugin(args, plugin_path, wd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(BENCH + args, capture_output=True, text=True, env=env, timeout=300)


def test_third_party_plugin_is_listed_and_usable(plugin_path, tmp_path):
    listing = _with_plugin(["list", "defenses"], plugin_path)
    assert listing.returncode == 0 and "noisy-training" in listing.stdout and "random-smoothing" in listing.stdout
    assert "Average softmax of F_w over n Gaussian-noised copies" in listing.stdout  # the docstring's first line
    attacks = _with_plugin(["list", "attacks"], plugin_path)
    assert "uniform-noise" in attacks.stdout
    run = _with_plugin(["run", "--defense", "noisy-training+random-smoothing", "--attack",
                        "uniform-noise,pgd10,adaptive-pgd10", "--epochs", "2", "--n-adaptive", "2",
                        "--workdir", str(tmp_path), "--no-progress"], plugin_path)
    assert run.returncode == 0, run.stderr
    recs = _records(tmp_path)
    assert [r["defense"] for r in recs] == ["noisy-training+random-smoothing"] * 3
    assert [r["threat_model"] for r in recs] == ["oblivious", "oblivious", "adaptive"]
    assert recs[0]["step"] is None and recs[0]["inference_config"] == {"sigma": 0.1, "n": 8}
    assert recs[0]["robust_acc"] >= recs[1]["robust_acc"] - 10  # noise is weaker than PGD (up to MI-style noise)


def test_docs_plugin_walkthrough_is_the_tested_example_package():
    readme = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text()
    src = Path(__file__).parent / "plugins" / "example_plugin"
    for name in ("pyproject.toml", "vb_example_plugin/__init__.py"):
        code = (src / name).read_text().strip()
        assert code in readme, f"docs/plugins.md's walk-through no longer shows {name} verbatim"


