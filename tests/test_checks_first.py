"""Checks before work and defaults that make sense (issue 28, items 4 and 6): bad attack and preset values fail
before any data loading or training; digits get a radius that breaks undefended ERM; an identical evaluation is
reused, not appended twice; plug-in keywords come from the CLI; a refused attack is skipped, not fatal."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

import varmixup_bench as bench
from varmixup_bench.results.store import ResultStore
from tests_cli_helper import bench_cli

FAST = ("--epochs", "1", "--test-subset", "60", "--no-progress")


def _records(wd: Path) -> list[dict]:
    return ResultStore(wd).records() if wd.exists() else []


@pytest.mark.parametrize("args", [
    ("run", "--defense", "trades", "--attack", "pgd(steps=-3)"),
    ("run", "--defense", "trades", "--attack", "clean,pgd(steps=0)"),
    ("run", "--defense", "trades", "--attack", "pgd10", "--set", "trials=0"),
    ("sweep", "--defenses", "trades", "--attacks", "pgd(steps=-3)"),
])
def test_bad_values_exit_2_before_any_data_loading_or_training(tmp_path, args):
    wd = tmp_path / "fresh"
    start = time.perf_counter()
    code, out, err = bench_cli(*args, "--workdir", str(wd), "--no-progress")
    seconds = time.perf_counter() - start
    assert code == 2, out + err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "must be >= 1" in err
    assert seconds < 15, seconds  # TRADES trained for 20 s before the error on the old code
    assert not wd.exists(), sorted(wd.rglob("*"))  # not even created: no weights, cache, data or store


def test_digits_default_eps_is_32_over_255_and_breaks_undefended_erm(erm):
    from varmixup_bench.config.presets import DATASET_EPS, get_preset

    quick = get_preset("quick")
    assert quick.eps is None and quick.eps_for() == pytest.approx(32 / 255)  # digits: two of its 17 grey levels
    assert quick.eps_for("l2") == pytest.approx(0.7)
    assert quick.eps_for(None, "cifar10") == pytest.approx(8 / 255) and quick.eps_for("l2", "cifar10") == 0.5
    assert get_preset("cifar-cpu").eps_for() == pytest.approx(8 / 255)
    assert get_preset("paper").eps_for(None, "digits") == pytest.approx(8 / 255)  # the paper preset's own radius
    assert set(DATASET_EPS["digits"]) == {"Linf", "L2"}
    rec = bench.evaluate(erm, "pgd10", record=False, show_progress=False)
    assert rec["eps"] == pytest.approx(32 / 255) and rec["step"] == pytest.approx(8 / 255)
    assert rec["eps_source"] == "dataset default" and "eps" not in rec["train_overrides"]
    assert rec["robust_acc"] < 20, rec["robust_acc"]  # 96 % at 8/255: ERM looked like the best defense
    mine = bench.evaluate(erm, "pgd10", eps=8 / 255, record=False, show_progress=False)
    assert mine["eps_source"] == "user" and mine["robust_acc"] > rec["robust_acc"]


def test_an_identical_run_reuses_its_record_unless_rerun(tmp_path):
    wd = tmp_path / "wd"
    args = ("run", "--defense", "erm", "--attack", "pgd10", *FAST, "--workdir", str(wd))
    code, _, err = bench_cli(*args)
    assert code == 0, err
    first = _records(wd)
    assert len(first) == 1 and "reused" not in err
    code, out, err = bench_cli(*args)
    assert code == 0, err
    assert _records(wd) == first  # nothing appended
    assert "reused stored record of erm pgd10" in err and "`bench run --rerun` (reuse=False) evaluates again" in err
    assert "pgd10" in out  # the table still shows the result
    code, _, err = bench_cli(*args, "--rerun")
    assert code == 0, err
    recs = _records(wd)
    assert len(recs) == 2 and recs[0]["eval_hash"] == recs[1]["eval_hash"] and "reused" not in err


@pytest.fixture()
def example_plugin(monkeypatch):
    """The example plug-in package's classes, registered in this process as its entry points would register them."""
    from varmixup_bench.defenses.base import INFERENCE, RECIPES

    monkeypatch.syspath_prepend(str(Path(__file__).parent / "plugins" / "example_plugin"))
    import vb_example_plugin as plugin

    RECIPES.names(), INFERENCE.names()  # installed entry points first, so the patch is not overwritten
    monkeypatch.setitem(RECIPES._items, "noisy-training", plugin.NoisyTraining)
    monkeypatch.setitem(INFERENCE._items, "random-smoothing", plugin.RandomSmoothing)
    return plugin


def test_plugin_keywords_set_from_the_cli_enter_inference_config_and_the_keys(tmp_path, example_plugin):
    wd = tmp_path / "wd"
    for spec in ("erm+random-smoothing", "erm+random-smoothing(sigma=0.2, n=4)", "noisy-training(sigma=0.05)"):
        code, _, err = bench_cli("run", "--defense", spec, "--attack", "clean", *FAST, "--workdir", str(wd))
        assert code == 0, err
    default, smooth, noisy = _records(wd)
    assert default["inference_config"] == {"sigma": 0.1, "n": 8}
    assert smooth["inference_config"] == {"sigma": 0.2, "n": 4}
    assert smooth["defense"] == "erm+random-smoothing(n=4,sigma=0.2)"  # canonical: keywords sorted, typed
    assert smooth["config_hash"] == default["config_hash"] and smooth["eval_hash"] != default["eval_hash"]
    assert noisy["train_config"]["recipe_config"] == {"sigma": 0.05} and noisy["config_hash"] != default["config_hash"]
    code, _, err = bench_cli("run", "--defense", "erm+random-smoothing(sigmaa=0.2)", "--workdir", str(tmp_path / "x"))
    assert code == 2 and "takes no keyword 'sigmaa'; its keywords: n, sigma" in err
    code, _, err = bench_cli("run", "--defense", "erm+random-smoothing(n=0.5)", "--workdir", str(tmp_path / "x"))
    assert code == 2 and "n must be an integer" in err
    assert not (tmp_path / "x").exists()


def test_a_refused_attack_is_skipped_with_one_line_and_the_others_are_recorded(tmp_path, example_plugin):
    wd = tmp_path / "wd"
    code, out, err = bench_cli("run", "--defense", "erm+random-smoothing", "--attack", "clean,surrogate-pgd50,pgd10",
                               *FAST, "--workdir", str(wd))
    assert code == 0, err
    skipped = [line for line in err.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1 and skipped[0].startswith("skipped surrogate-pgd50: ") and "surrogate" in skipped[0][25:]
    assert [r["attack"] for r in _records(wd)] == ["clean", "pgd10"]
    code, _, err = bench_cli("run", "--defense", "erm+random-smoothing", "--attack", "surrogate-pgd50", *FAST,
                             "--workdir", str(wd))
    assert code == 2 and "no attack ran" in err  # nothing ran: an error
