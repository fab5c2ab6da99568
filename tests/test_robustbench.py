"""RobustBench: the import shims (with tests that show the bugs), `robustbench:NAME` defenses loaded offline through
robustbench's own loader, and `bench leaderboard --format robustbench` read back by robustbench's ModelInfo."""
from __future__ import annotations

from varmixup_bench.results.store import ResultStore

import dataclasses
import hashlib
import json
import os
import subprocess
import sys

import pytest
import torch

from varmixup_bench.core.errors import BenchError
from varmixup_bench.training.models import build_model
from tests_cli_helper import bench_cli

ZOO_NAME = "Tiny2026Digits"


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=300)


def test_robustbench_does_not_import_without_the_autoattack_alias():
    """The bug: robustbench 1.1.1 imports a module `autoattack` that no registry package provides."""
    res = _python("import sys, varmixup_bench.training.robustbench_compat as c\n"
                  "sys.modules.setdefault('pkg_resources', c._pkg_resources_shim())\n"
                  "import robustbench")
    assert res.returncode != 0 and "No module named 'autoattack'" in res.stderr


def test_robustbench_does_not_import_without_pkg_resources():
    """The bug: robustbench.loaders imports pkg_resources, gone from setuptools >= 81 (simulated by blocking it)."""
    res = _python("import sys; sys.modules['pkg_resources'] = None\n"
                  "import varmixup_bench.training.robustbench_compat as c; sys.modules['autoattack'] = c._autoattack_alias()\n"
                  "import robustbench")
    assert res.returncode != 0 and "pkg_resources" in res.stderr


def test_shims_make_robustbench_import_with_pyautoattack_behind_autoattack():
    res = _python("import sys; sys.modules['pkg_resources'] = None\n"
                  "from varmixup_bench.training.robustbench_compat import import_robustbench\n"
                  "rb = import_robustbench()\n"
                  "import pyautoattack, pyautoattack.state, robustbench.loaders as L\n"
                  "assert issubclass(rb.eval.AutoAttack, pyautoattack.AutoAttack)\n"
                  "assert rb.eval.EvaluationState is pyautoattack.state.EvaluationState\n"
                  "import os; assert os.path.isdir(L.pkg_resources.resource_filename('robustbench.loaders', 'helper_files'))\n"
                  "print('ok')")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_alias_takes_robustbench_benchmark_call_signature(erm, digits, tmp_path):
    """robustbench.eval.benchmark's exact calls (log_path=, bs=, state_path=) run pyautoattack, and the state file
    it reads back gives the same robust accuracy as the returned adversarial examples."""
    from varmixup_bench.training.robustbench_compat import import_robustbench

    rb = import_robustbench()
    x, y = digits.test.x[:24], digits.test.y[:24]
    model = erm.classifier.eval()
    eps = 0.3
    adversary = rb.eval.AutoAttack(model, norm="Linf", eps=eps, version="standard", device="cpu",
                                   log_path=str(tmp_path / "aa.log"))
    state_path = tmp_path / "aa_state.json"
    x_adv = adversary.run_standard_evaluation(x, y, bs=24, state_path=state_path)
    assert (x_adv - x).abs().max() <= eps + 1e-5 and x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        adv_acc = (model(x_adv).argmax(1) == y).float().mean().item()
        clean_acc = (model(x).argmax(1) == y).float().mean().item()
    state = rb.eval.EvaluationState.from_disk(state_path)
    assert state.robust_flags.float().mean().item() == pytest.approx(adv_acc)
    assert adv_acc < clean_acc  # eps 0.3 on digits breaks the ERM model


@pytest.fixture()
def zoo(monkeypatch, tmp_path, erm, digits):
    """A stand-in model-zoo entry (the ERM digits classifier), saved the way RobustBench checkpoints are."""
    from varmixup_bench.training.robustbench_compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    mean, std = digits.channel_stats()
    section = model_dicts[BenchmarkDataset.cifar_10][ThreatModel.Linf]
    monkeypatch.setitem(section, ZOO_NAME, {
        "model": lambda: build_model("small-cnn", digits.image_shape, digits.num_classes, mean, std),
        "gdrive_id": "offline-test-no-download"})
    model_dir = tmp_path / "zoo"
    path = model_dir / "cifar10" / "Linf" / f"{ZOO_NAME}.pt"
    path.parent.mkdir(parents=True)
    # DataParallel-style keys inside a `state_dict` entry, as many zoo checkpoints are: robustbench strips them
    torch.save({"state_dict": {f"module.{k}": v for k, v in erm.classifier.state_dict().items()}}, path)
    return model_dir, path


def _zoo_defense(model_dir, digits, workdir, spec=f"robustbench:{ZOO_NAME}"):
    import varmixup_bench as bench

    return bench.train(spec, digits, workdir=workdir, show_progress=False, zoo_model_dir=str(model_dir),
                       zoo_dataset="cifar10")


def test_zoo_model_gives_the_numbers_of_the_same_weights_trained_here(zoo, erm, digits, tmp_path):
    from varmixup_bench.training.runner import evaluate

    model_dir, path = zoo
    d = _zoo_defense(model_dir, digits, tmp_path / "wd")
    assert d.spec == f"robustbench:{ZOO_NAME}" and not d.stochastic and not d.classifier.training
    for attack in ("clean", "pgd10"):
        ours = evaluate(erm, attack, eps=24 / 255, record=False, show_progress=False)
        theirs = evaluate(d, attack, eps=24 / 255, record=False, show_progress=False)
        assert theirs["robust_acc"] == ours["robust_acc"] and theirs["clean_acc"] == ours["clean_acc"]
    assert theirs["zoo"]["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert theirs["zoo"]["dataset"] == "cifar10" and theirs["model"] == type(erm.classifier).__name__


def test_zoo_model_under_mixup_inference(zoo, digits, tmp_path):
    model_dir, _ = zoo
    d = _zoo_defense(model_dir, digits, tmp_path / "wd", spec=f"robustbench:{ZOO_NAME}+mi")
    assert d.stochastic and d.rule.config()["n_mi"] >= 1
    probs = d.predict_proba(digits.test.x[:8], torch.Generator().manual_seed(0))
    assert torch.allclose(probs.sum(1), torch.ones(8), atol=1e-5)


def test_cli_runs_a_zoo_model_offline_and_records_it(zoo, digits, tmp_path):
    model_dir, path = zoo
    wd = tmp_path / "wd"
    code, _, err = bench_cli("run", "--defense", f"robustbench:{ZOO_NAME}", "--attack", "clean,pgd10", "--model-dir",
                             str(model_dir), "--zoo-dataset", "cifar10", "--workdir", str(wd), "--no-progress")
    assert code == 0, err
    recs = ResultStore(wd).records()
    assert [r["attack"] for r in recs] == ["clean", "pgd10"]
    assert all(r["defense"] == f"robustbench:{ZOO_NAME}" and r["trained"] is False for r in recs)
    assert recs[1]["robust_acc"] <= recs[1]["clean_acc"]


def test_missing_checkpoint_says_where_it_was_expected(zoo, digits, tmp_path):
    model_dir, path = zoo
    path.unlink()
    with pytest.raises(BenchError, match=f"not in --model-dir: expected .*cifar10/Linf/{ZOO_NAME}.pt.*--download"):
        _zoo_defense(model_dir, digits, tmp_path / "wd")


def test_truncated_zoo_checkpoint_is_a_one_line_error(zoo, digits, tmp_path):
    model_dir, path = zoo
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(BenchError, match=f"RobustBench model {ZOO_NAME} could not be loaded from") as info:
        _zoo_defense(model_dir, digits, tmp_path / "wd")
    assert "\n" not in str(info.value)


def test_unknown_zoo_name_suggests_the_closest(zoo, digits, tmp_path):
    model_dir, _ = zoo
    with pytest.raises(BenchError, match="unknown RobustBench model 'Carmon2019Unlabelled'.*Did you mean 'Carmon2019Unlabeled'"):
        _zoo_defense(model_dir, digits, tmp_path / "wd", spec="robustbench:Carmon2019Unlabelled")


def test_dataset_without_a_zoo_counterpart_is_refused(digits, tmp_path):
    import varmixup_bench as bench

    with pytest.raises(BenchError, match=r"digits .*matches no RobustBench dataset.*--zoo-dataset"):
        bench.train(f"robustbench:{ZOO_NAME}", digits, workdir=tmp_path, show_progress=False)


def test_bad_zoo_options_exit_2_with_one_line(tmp_path):
    for args, msg in ((["--zoo-dataset", "mnist"], "RobustBench datasets are"),
                      (["--zoo-threat-model", "L7", "--zoo-dataset", "cifar10"], "valid RobustBench threat models")):
        code, _, err = bench_cli("run", "--defense", "robustbench:Standard", "--attack", "clean", *args,
                                 "--workdir", str(tmp_path), "--no-progress")
        assert code == 2 and msg in err and "Traceback" not in err
    code, _, err = bench_cli("run", "--defense", "robustbench:Bad Name", "--workdir", str(tmp_path))
    assert code == 2 and "malformed defense spec" in err


class _Payload:
    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {_Payload.marker}",))


def test_zoo_checkpoint_with_pickled_code_is_refused_never_run(zoo, digits, tmp_path):
    model_dir, path = zoo
    _Payload.marker = str(tmp_path / "pwned")
    torch.save({"state_dict": {"conv.weight": _Payload()}}, path)
    with pytest.raises(BenchError, match="refused: it holds more than weights"):
        _zoo_defense(model_dir, digits, tmp_path / "wd")
    assert not (tmp_path / "pwned").exists()


def test_leaderboard_robustbench_json_matches_records_and_modelinfo(erm, mixup_mi, tmp_path):
    from varmixup_bench.views.rb_export import MODEL_INFO_FIELDS
    from varmixup_bench.training.robustbench_compat import import_robustbench
    from varmixup_bench.training.runner import evaluate

    rb = import_robustbench()
    assert MODEL_INFO_FIELDS == tuple(f.name for f in dataclasses.fields(rb.utils.ModelInfo))
    wd = tmp_path / "wd"
    part = erm.dataset.test.subset(torch.arange(64))
    recs = {(d.spec, a): evaluate(d, a, eps=24 / 255, workdir=wd, split=part, show_progress=False)
            for d in (erm, mixup_mi) for a in ("clean", "pgd10", "adaptive-pgd10")}
    code, _, err = bench_cli("leaderboard", "--format", "robustbench", "--workdir", str(wd), "--output", str(tmp_path / "rb"))
    assert code == 0, err
    files = sorted((tmp_path / "rb" / "digits" / "Linf").glob("*.json"))
    assert [f.name for f in files] == ["erm.json", "mixup+mi.json"]
    for f in files:
        info = json.loads(f.read_text())
        rb.utils.ModelInfo(**info)  # RobustBench's own record type accepts it
        spec = info["name"]
        assert info["clean_acc"] == f"{recs[spec, 'clean']['clean_acc']:.2f}" and info["eps"] == "24/255"
        assert info["autoattack_acc"] is None and "AutoAttack not run" in info["footnote"]
        worst = min(recs[spec, a]["robust_acc"] for a in ("pgd10", "adaptive-pgd10"))
        assert f": {worst:.2f} (" in info["footnote"]
    assert json.loads(files[1].read_text())["number_forward_passes"] == mixup_mi.rule.config()["n_mi"]
    assert json.loads(files[0].read_text())["number_forward_passes"] == 1
    code, _, err = bench_cli("leaderboard", "--format", "robustbench", "--workdir", str(wd))
    assert code == 2 and "--output DIR" in err


def test_worst_over_attacks_compares_attacks_on_one_training_seed():
    """PGD-10 on three seeds (40, 10, 40: mean 30) and adaptive PGD-10 on seed 0 only (35): the worst case over
    attacks is seed 0's 35 (adaptive), not the pooled PGD-10 mean set against a single seed's adaptive cell."""
    import pandas as pd

    from varmixup_bench.views.rb_export import model_info

    def row(attack, acc, seed, eps=8 / 255):
        return {"dataset": "d", "defense": "x+mi", "model": "m", "preset": "p", "attack": attack, "norm": "Linf",
                "eps": eps, "clean_acc": 50.0, "robust_acc": acc, "n_examples": 1000, "seed": seed,
                "threat_model": "adaptive" if attack.startswith("adaptive") else "oblivious",
                "inference_config": {"n_mi": 30}}

    seed_rows = pd.DataFrame([row("clean", 50.0, s, 0.0) for s in (0, 1, 2)]
                             + [row("pgd10", a, s) for s, a in ((0, 40.0), (1, 10.0), (2, 40.0))]
                             + [row("adaptive-pgd10", 35.0, 0)])
    pooled = pd.DataFrame([row("clean", 50.0, "0,1,2", 0.0), row("pgd10", 30.0, "0,1,2"),
                           row("adaptive-pgd10", 35.0, 0)])
    note = model_info(pooled, "Linf", seed_rows)["footnote"]
    assert "at 8/255 on training seed 0 over adaptive-pgd10, pgd10: 35.00 (adaptive-pgd10, adaptive)" in note
    one = seed_rows[seed_rows["seed"] == 0]
    assert "training seed" not in model_info(one, "Linf", one)["footnote"]  # one seed: nothing to say


def test_zoo_dataset_is_inferred_from_name_or_shape():
    from varmixup_bench.training.data import Dataset, Split
    from varmixup_bench.training.zoo import zoo_dataset_for

    def fake(name, classes, shape):
        split = Split(torch.zeros(2, *shape), torch.zeros(2, dtype=torch.long))
        return Dataset(name, split, split, [str(i) for i in range(classes)])

    assert zoo_dataset_for(fake("imagefolder:cifar10-jpeg.tar.gz", 10, (3, 32, 32))) == "cifar10"
    assert zoo_dataset_for(fake("imagefolder:x", 100, (3, 32, 32))) == "cifar100"
    assert zoo_dataset_for(fake("cifar100", 100, (3, 32, 32))) == "cifar100"
    assert zoo_dataset_for(fake("svhn", 10, (3, 32, 32)), "cifar10") == "cifar10"  # explicit beats inferred
    for name, shape in (("imagefolder:x", (3, 64, 64)), ("svhn", (3, 32, 32))):  # svhn has CIFAR's shape, not its classes
        with pytest.raises(BenchError, match="matches no RobustBench dataset"):
            zoo_dataset_for(fake(name, 10, shape))
