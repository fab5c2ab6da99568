"""The `bench` CLI: a run records results, a second run reuses the cached model, bad input exits 2 with one line."""
from __future__ import annotations

import json
import re

import pytest

from tests_cli_helper import bench_cli


def bench(*args: str):
    return bench_cli(*args)


@pytest.fixture()
def wd(tmp_path):
    return str(tmp_path / "wd")


def _records(wd):
    from varmixup_bench.results.store import ResultStore

    return ResultStore(wd).records()


def test_second_run_with_new_attack_reuses_the_cached_model(wd, monkeypatch, private_cache):
    code, out, err = bench("run", "--defense", "erm", "--attack", "pgd10", "--epochs", "2", "--workdir", wd, "--no-progress")
    assert code == 0, err
    assert "trained" in err and "pgd10" in out
    import varmixup_bench.training.runner as r

    def no_training(*a, **k):
        raise AssertionError("training happened although the model was cached")

    monkeypatch.setattr(r, "train_classifier", no_training)
    code, out, err = bench("run", "--defense", "erm", "--attack", "clean,pgd50", "--epochs", "2", "--workdir", wd, "--no-progress")
    assert code == 0, err
    assert "loaded from cache" in err
    recs = _records(wd)
    assert [r["attack"] for r in recs] == ["pgd10", "clean", "pgd50"]
    assert [r["trained"] for r in recs] == [True, False, False]
    assert len({r["config_hash"] for r in recs}) == 1


def test_eps_list_records_each_eps(wd):
    code, out, err = bench("run", "--defense", "erm", "--epochs", "2", "--eps", "2/255,0.0314", "--step", "1/255",
                           "--workdir", wd, "--no-progress")
    assert code == 0, err
    recs = _records(wd)
    assert [round(r["eps"], 4) for r in recs] == [round(2 / 255, 4), 0.0314]
    assert all(r["step"] == pytest.approx(1 / 255) for r in recs)


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["--defense", "mixup+mj"], r"unknown inference rule 'mj'\. Did you mean 'mi'\?.*plain"),
        (["--defense", "mixpu"], r"unknown recipe 'mixpu'\. Did you mean 'mixup'\?.*erm"),
        (["--defense", "erm", "--attack", "pgd100"], r"unknown attack 'pgd100'\. Did you mean 'pgd10'\?.*clean"),
        (["--defense", "erm", "--dataset", "cifar11"], r"unknown dataset 'cifar11'\. Did you mean 'cifar10'\?.*digits"),
        (["--defense", "erm", "--model", "resnet35"], r"unknown model 'resnet35'\. Did you mean 'resnet34'\?.*small-cnn"),
        (["--defense", "mixup++mi"], r"malformed defense spec"),
        (["--defense", "erm+mi+mi"], r"malformed defense spec"),
        (["--defense", "erm", "--eps", "-8/255"], r"must be >= 0"),
        (["--defense", "erm", "--eps", "8"], r"must be <= 1"),
        (["--defense", "erm", "--eps", "8/0"], r"invalid epsilon"),
        (["--defense", "erm", "--step", "abc"], r"invalid step size"),
        (["--defense", "erm", "--trials", "0"], r"preset field trials must be >= 1, got 0 \(option --trials\)"),
        (["--defense", "erm", "--dataset", "cifar10", "--data-dir", "/nonexistent/cifar"],
         r"cifar10: files not found; expected /nonexistent/cifar/cifar-10-batches-py"),
        (["--defense", "erm", "--dataset", "imagefolder:/nonexistent/x.tar.gz"], r"does not exist"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_leaves_store_alone(wd, args, pattern):
    code, out, err = bench("run", *args, "--workdir", wd, "--no-progress")
    assert code == 2
    assert re.search(pattern, err), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _records(wd) == []


def test_list_shows_registered_names():
    """Every registered recipe, inference rule and attack has its row (name, then its help's first line)."""
    import re

    from varmixup_bench.attacks.base import ATTACKS
    from varmixup_bench.defenses import INFERENCE, RECIPES

    code, out, _ = bench("list", "defenses")
    assert code == 0 and "RECIPE[+INFERENCE]" in out
    rows = set(re.findall(r"(recipe|\+infer) +(\S+) +│", out))
    assert rows == {("recipe", n) for n in RECIPES.names()} | {("+infer", n) for n in INFERENCE.names()}
    code, out, _ = bench("list", "attacks")
    assert code == 0
    from varmixup_bench.attacks.spec import FAMILIES

    assert ({n for n in re.findall(r"^│ (\S+) +│", out, re.M)}
            == set(ATTACKS.names()) | {f"{family}:…" for family in FAMILIES.names()})
    code, _, err = bench("list", "atacks")
    assert code == 2 and "Did you mean 'attacks'" in err



def test_plot_help_names_every_registered_plot_and_the_api_exports_the_base_classes():
    """The plot argument's help is typed by hand (importing the plots would slow every command): it must name
    every registered kind; the plug-in base classes the README lists import from the package itself."""
    import varmixup_bench
    from varmixup_bench.views.plots import PLOTS

    code, out, _ = bench("plot", "--help")
    assert code == 0 and all(kind in out for kind in PLOTS.names())
    for name in ("Recipe", "InferenceRule", "Attack", "Measurement", "TrainContext"):
        assert isinstance(getattr(varmixup_bench, name), type)
    assert issubclass(varmixup_bench.Measurement, varmixup_bench.Attack)

def test_leaderboard_formats(wd):
    assert bench("run", "--defense", "erm", "--attack", "clean,pgd10", "--epochs", "2", "--eps", "8/255", "--workdir", wd,
                 "--no-progress")[0] == 0
    code, out, _ = bench("leaderboard", "--workdir", wd, "--format", "csv")
    assert code == 0
    header = out.splitlines()[0].split(",")
    for col in ("dataset", "defense", "attack", "threat_model", "eps", "step", "clean_acc", "robust_acc",
                "robust_acc_std", "trials", "n_examples", "seconds", "seed", "config_hash", "versions"):
        assert col in header
    assert len(out.strip().splitlines()) == 3
    code, out, _ = bench("leaderboard", "--workdir", wd, "--format", "md", "--layout", "long")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 4 + 2  # header, rule, 2 rows, blank, interval footnote
    assert "Wilson" in lines[-1] and lines[-1].endswith("decided at a family-wise 5 %.")  # the flags alone: 5 %
    lines = lines[:4]
    assert re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[1].replace(" ", ""))
    assert len({l.count("|") for l in lines}) == 1
    assert "8/255" in out and "white-box" in out
    code, out, _ = bench("leaderboard", "--workdir", wd, "--format", "md", "--layout", "wide")  # defenses x attacks
    table = [l for l in out.strip().splitlines() if l.startswith("|")]
    assert code == 0 and len(table) == 3 and "pgd10 ε=8/255" in table[0] and "| erm" in table[2]
    shared = "family-wise 2.5 % (this command's 5 % shared equally by the 2 families"  # bold marks and ⚠ findings of one command
    assert shared in out
    code, out, _ = bench("leaderboard", "--workdir", wd, "--format", "md")  # the default: the headline view
    table = [l for l in out.strip().splitlines() if l.startswith("|")]
    assert code == 0 and len(table) == 3 and "strongest @ 8/255 (attack)" in table[0] and "| erm" in table[2]
    assert shared in out
    code, out, _ = bench("leaderboard", "--workdir", wd, "--format", "json")
    rows = json.loads(out)
    assert {r["attack"] for r in rows} == {"clean", "pgd10"}
    code, _, err = bench("leaderboard", "--workdir", wd, "--format", "xlsx")
    assert code == 2 and "Valid formats: csv, md, json, html" in err


def test_vae_train_show_and_samples_write_pngs(wd, private_cache):
    from PIL import Image

    code, out, err = bench("vae", "show", "--vae-epochs", "2", "--workdir", wd)
    assert code == 2 and "run `bench vae train` first" in err
    code, out, err = bench("vae", "train", "--vae-epochs", "2", "--workdir", wd, "--no-progress")
    assert code == 0, err
    assert "test recon" in out
    pngs = sorted((__import__("pathlib").Path(wd) / "figures").glob("vae-*.png"))
    assert len(pngs) == 1
    w, h = Image.open(pngs[0]).size
    assert w > h  # one row of inputs above one row of reconstructions, 16 wide
    code, out, err = bench("vae", "show", "--vae-epochs", "2", "--workdir", wd)
    assert code == 0 and "cached" in out
    target = __import__("pathlib").Path(wd) / "fig7.png"
    code, out, err = bench("samples", "--defense", "varmixup", "--pairs", "3", "--workdir", wd, "--output",
                           str(target), "--no-progress")
    assert code == 0, err
    w, h = Image.open(target).size
    assert w < h  # 5 lambdas wide, 2 rows per pair
    code, _, err = bench("samples", "--defense", "erm", "--workdir", wd)
    assert code == 2 and "has no VAE" in err


def test_varmixup_run_through_cli_records_var_defense(wd):
    code, out, err = bench("run", "--defense", "adv-varmixup+adv-varmi", "--epochs", "1", "--vae-epochs", "1",
                           "--n-mi", "4", "--test-subset", "50", "--workdir", wd, "--no-progress")
    assert code == 0, err
    rec = _records(wd)[0]
    assert rec["defense"] == "adv-varmixup+adv-varmi" and rec["threat_model"] == "oblivious"
    assert rec["inference_config"]["vae"]["adversarial"] is True and rec["n_examples"] == 50
