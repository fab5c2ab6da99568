"""Option parsing, presets and the workdir location."""
from __future__ import annotations

from varmixup_bench.results.store import ResultStore

from pathlib import Path

import pytest

from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.parsing import parse_eps, parse_eps_list, parse_step
from varmixup_bench.config.presets import get_preset
from varmixup_bench.core.workdir import default_workdir
from varmixup_bench.defenses.spec import DefenseSpec, parse_defense_spec


@pytest.mark.parametrize("text, value", [("8/255", 8 / 255), ("0.0314", 0.0314), (" 2 / 255 ", 2 / 255), ("0", 0.0), ("0.5", 0.5)])
def test_eps_parses(text, value):
    assert parse_eps(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "abc", "1/0", "nan", "inf", "-0.1", "2", "8/255/2", "1e400"])
def test_bad_eps_is_a_bench_error(text):
    with pytest.raises(BenchError):
        parse_eps(text)


def test_eps_list_and_step():
    assert parse_eps_list("2/255,4/255,4/255") == pytest.approx([2 / 255, 4 / 255])
    with pytest.raises(BenchError):
        parse_eps_list("2/255,,4/255")
    with pytest.raises(BenchError):
        parse_step("0")


def test_defense_spec_grammar():
    assert parse_defense_spec("mixup+mi") == DefenseSpec("mixup", "mi")
    assert parse_defense_spec("erm") == DefenseSpec("erm", "plain")
    assert str(parse_defense_spec("erm+plain")) == "erm"
    for bad in ["", "+mi", "mixup+", "Mixup", "a b", "erm+mi+mi"]:
        with pytest.raises(BenchError):
            parse_defense_spec(bad)


def test_quick_preset_and_overrides():
    p = get_preset(None)
    assert p.name == "quick" and p.dataset == "digits" and p.step is None  # None: eps/4
    assert p.eps is None and p.eps_for() == pytest.approx(32 / 255)  # None: the dataset's default (DATASET_EPS)
    assert p.lambda_mi_for("mixup") == 0.5 and p.n_mi == 30 and p.eta == 1.0 and p.lr == 1e-3
    q = p.with_overrides(step=8 / 255, n_mi=None)
    assert q.step == pytest.approx(8 / 255) and q.n_mi == 30
    with pytest.raises(BenchError, match="Did you mean 'quick'"):
        get_preset("quik")


def test_default_workdir_is_never_the_cwd(monkeypatch, tmp_path):
    monkeypatch.delenv("BENCH_WORKDIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert default_workdir() == tmp_path / "xdg" / "varmixup-bench"
    monkeypatch.setenv("BENCH_WORKDIR", str(tmp_path / "env"))
    assert default_workdir() == tmp_path / "env"
    monkeypatch.delenv("BENCH_WORKDIR")
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_workdir() == Path.home() / ".local" / "share" / "varmixup-bench"


def test_adv_variants_train_like_their_base_recipe():
    p = get_preset("quick")
    assert p.epochs_for("adv-varmixup") == p.epochs_for("varmixup") == p.epochs_for("mixup")
    assert p.epochs_for("adv-varerm") == p.epochs_for("varerm") == p.epochs_for("erm")
    assert p.epochs_for("not-listed") == p.epochs_default


def test_paper_preset_matches_the_papers_table():
    p = get_preset("paper")
    assert p.model == "resnet34" and p.optimizer == "adam" and p.lr == 1e-3 and p.eta == 1.0
    assert {r: p.epochs_for(r) for r in ("erm", "varerm", "mixup", "varmixup", "at", "trades", "iat")} == {
        "erm": 100, "varerm": 100, "mixup": 150, "varmixup": 150, "at": 250, "trades": 250, "iat": 350}
    assert p.epochs_for("adv-varmixup") == 150
    assert p.train_eps == pytest.approx(8 / 255) and p.train_step == pytest.approx(2 / 255)
    assert p.lambda_mi_for("mixup") == 0.5 and p.lambda_mi_for("iat") == 0.6 and p.n_mi == 30
    assert p.eps == pytest.approx(8 / 255) and p.step == pytest.approx(8 / 255) and p.trials == 10


def test_explicit_cli_option_beats_the_preset(tmp_path):
    from tests_cli_helper import bench_cli

    wd = tmp_path / "wd"
    code, _, err = bench_cli("run", "--defense", "erm", "--preset", "paper", "--dataset", "digits", "--model",
                             "small-cnn", "--epochs", "1", "--step", "2/255", "--trials", "1", "--workdir", str(wd),
                             "--no-progress")
    assert code == 0, err
    rec = ResultStore(wd).records()[0]
    assert rec["preset"] == "paper" and rec["model"] == "small-cnn" and rec["trials"] == 1
    assert rec["step"] == pytest.approx(2 / 255) and rec["eps"] == pytest.approx(8 / 255)
