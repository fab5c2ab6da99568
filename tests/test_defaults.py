"""What a new user tripped over: device default, preset overrides and files, honest records, diagnose's gap check."""
from __future__ import annotations

from varmixup_bench.results.store import ResultStore

import csv
import io
import json

import pytest
import torch

from tests_cli_helper import bench_cli


@pytest.mark.parametrize("cuda,mps,expected", [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"),
                                               (False, False, "cpu")])
def test_auto_device_prefers_cuda_then_mps_then_cpu(cuda, mps, expected):
    from varmixup_bench.training.runner import choose_device

    assert choose_device(cuda, mps) == expected


def test_auto_resolves_on_this_machine_and_is_the_default(tmp_path):
    from varmixup_bench.training.runner import resolve_device

    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == want and resolve_device(None).type == want
    code, _, err = bench_cli("run", "--defense", "erm", "--attack", "clean", "--epochs", "1", "--workdir",
                             str(tmp_path), "--no-progress")
    assert code == 0 and f"device {want}" in err
    rec = ResultStore(tmp_path).records()[-1]
    assert rec["device"].startswith(want)


def test_set_overrides_any_preset_field_and_n_adaptive_exists(tmp_path):
    code, _, err = bench_cli("run", "--defense", "mixup+mi", "--attack", "adaptive-pgd10", "--epochs", "1",
                             "--n-adaptive", "2", "--set", "corruption_subset=50", "--set", "spsa_iters=3",
                             "--test-subset", "40", "--workdir", str(tmp_path), "--no-progress")
    assert code == 0, err
    rec = ResultStore(tmp_path).records()[-1]
    assert rec["attack_config"]["eot"] == 2  # N_A, the adaptive attack's EOT draws
    assert rec["train_overrides"]["corruption_subset"] == 50 and rec["train_overrides"]["spsa_iters"] == 3
    for bad, pattern in ((["--set", "no_such_field=1"], "unknown preset field"),
                         (["--set", "n_adaptive=many"], "takes an integer"), (["--set", "oops"], "FIELD=VALUE")):
        code, _, err = bench_cli("run", "--defense", "erm", *bad, "--workdir", str(tmp_path))
        assert code == 2 and pattern in err, err


def test_preset_file_is_validated_and_used(tmp_path):
    good = tmp_path / "mine.toml"
    good.write_text('base = "quick"\nn_mi = 4\nepochs = { erm = 1 }\ntest_subset = 30\n')
    code, _, err = bench_cli("run", "--defense", "erm", "--attack", "clean", "--preset-file", str(good),
                             "--workdir", str(tmp_path / "wd"), "--no-progress")
    assert code == 0, err
    rec = ResultStore(tmp_path / "wd").records()[-1]
    assert rec["preset"] == "mine" and rec["n_examples"] == 30 and rec["train_config"]["epochs"] == 1
    bad = tmp_path / "bad.toml"
    bad.write_text("n_mii = 4\n")
    code, _, err = bench_cli("run", "--defense", "erm", "--preset-file", str(bad), "--workdir", str(tmp_path))
    assert code == 2 and "unknown preset field" in err and "n_mi" in err
    code, _, err = bench_cli("run", "--defense", "erm", "--preset-file", str(tmp_path / "nope.toml"))
    assert code == 2 and "does not exist" in err


def test_records_show_how_they_were_made_and_rows_with_other_training_stay_apart(tmp_path):
    wd = str(tmp_path)
    for epochs in ("2", "1"):
        code, _, err = bench_cli("run", "--defense", "erm", "--attack", "clean", "--epochs", epochs,
                                 "--test-subset", "50", "--workdir", wd, "--no-progress")
        assert code == 0, err
    recs = ResultStore(tmp_path).records()
    assert [r["train_overrides"]["epochs"] for r in recs] == [2, 1]
    assert all(r["train_overrides"]["test_subset"] == 50 and r["dataset"] == "digits" for r in recs)
    code, out, _ = bench_cli("leaderboard", "--workdir", wd, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 2  # never merged into "the latest"
    for field in ("trained", "train_config", "train_overrides", "inference_config", "per_image", "robust_acc_ci_low"):
        assert field in rows[0], field
    json.loads(rows[0]["train_config"]) and json.loads(rows[0]["inference_config"])  # canonical JSON, not repr
    code, out, _ = bench_cli("leaderboard", "--workdir", wd, "--format", "md")
    assert "erm [epochs=2" in out and "erm [epochs=1" in out


def test_diagnose_flags_oblivious_accuracy_far_above_adaptive():
    from varmixup_bench.views.diagnostics import diagnose
    from varmixup_bench.views.leaderboard import leaderboard_frame

    base = {"dataset": "d", "defense": "varmixup+varmi", "clean_acc": 90.0, "clean_acc_std": 0.0, "robust_acc_std": 0.0,
            "trials": 1, "n_examples": 360, "seconds": 1, "seed": 0, "model": "m", "preset": "p", "device": "cpu",
            "config_hash": "h", "versions": {}, "step": 2 / 255, "eps": 8 / 255}
    obl = dict(base, attack="pgd50", threat_model="oblivious", robust_acc=81.7, timestamp="1", eval_hash="a")
    ada = dict(base, attack="adaptive-pgd10", threat_model="adaptive", robust_acc=70.0, timestamp="2", eval_hash="b")
    found = [f for f in diagnose(leaderboard_frame([obl, ada])) if f.check == "oblivious-overstates"]
    assert len(found) == 1 and "overstates" in found[0].message
    close = dict(ada, robust_acc=80.5)
    assert not [f for f in diagnose(leaderboard_frame([obl, close])) if f.check == "oblivious-overstates"]
