"""Bad input found by an audit of the CLI (2026-12-02): each is one line and a non-zero status, never a traceback
or a silent exit 0, and a failing command leaves a workdir that did not exist uncreated."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests_cli_helper import bench_cli

ROOT = Path(__file__).resolve().parents[1]


def _fails(*args: str, match: str, code: int = 2) -> str:
    status, out, err = bench_cli(*args)
    assert status == code, (status, out, err)
    assert "Traceback" not in out + err
    assert match in err, err
    return err


@pytest.mark.parametrize("args, match", [
    (("--seed", "-1"), "preset field seed must be >= 0, got -1 (option --seed)"),
    (("--set", "subset_seed=-1"), "preset field subset_seed must be >= 0"),
    (("--set", 'epochs={"ermm": 2}'), "preset field epochs: unknown recipe 'ermm'. Did you mean 'erm'?"),
    (("--attack", "PGD10"), "unknown attack 'PGD10'. Did you mean 'pgd10'?"),
    (("--eps", "300/255"), "(or did you mean --norm l2?)"),
])
def test_bad_run_values_are_refused_before_any_work(tmp_path, args, match):
    wd = tmp_path / "fresh"
    err = _fails("run", "--defense", "erm", "--workdir", str(wd), "--no-progress", *args, match=match)
    assert "300/255/255" not in err  # a radius that already has its /255 is not told to add one
    assert not wd.exists()


def test_a_preset_file_whose_base_or_counts_are_ill_typed_is_refused(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text("base = 5\n")
    _fails("run", "-d", "erm", "--preset-file", str(path), "--workdir", str(tmp_path / "wd"),
           match='base must be a preset\'s name in quotes, e.g. base = "quick"; got 5')
    path.write_text('base = "quick"\ntrials = true\n')  # TOML's true is no count (it had read as 1)
    _fails("run", "-d", "erm", "--preset-file", str(path), "--workdir", str(tmp_path / "wd"),
           match="preset field trials takes an integer, got True")
    assert not (tmp_path / "wd").exists()


def test_a_dataset_that_cannot_load_and_a_missing_device_leave_no_workdir(tmp_path):
    _fails("run", "-d", "erm", "--dataset", f"imagefolder:{tmp_path / 'nope'}", "--workdir", str(tmp_path / "a"),
           "--no-progress", match="nope", code=2)
    assert not (tmp_path / "a").exists()
    _fails("sweep", "--defenses", "erm", "--attacks", "clean", "--device", "tpu", "--workdir", str(tmp_path / "b"),
           match="--device tpu: expected auto, cpu, cuda[:N] or mps")
    assert not (tmp_path / "b").exists()


def test_restore_refuses_a_file_that_is_no_leaderboard_csv_and_writes_nothing(tmp_path):
    wd = tmp_path / "wd"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _fails("restore", str(empty), "--workdir", str(wd), match="is not a long-layout leaderboard CSV")
    png = tmp_path / "image.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    _fails("restore", str(png), "--workdir", str(wd), match="is not a long-layout leaderboard CSV")
    _fails("restore", str(tmp_path), "--workdir", str(wd), match="is not a file")
    committed = (ROOT / "leaderboards" / "cifar10-regime.csv").read_text()
    lines = committed.splitlines()
    torn = tmp_path / "torn.csv"  # the header, one whole row, and the next one cut after 12 of its fields
    torn.write_text("\n".join(lines[:2] + [",".join(lines[2].split(",")[:12])]) + "\n")
    _fails("restore", str(torn), "--workdir", str(wd), match="line 3: no ")
    assert not wd.exists()  # a damaged CSV writes nothing, not even the workdir
    whole = tmp_path / "whole.csv"
    whole.write_text("\n".join(lines[:3]) + "\n")
    status, out, err = bench_cli("restore", str(whole), "--workdir", str(wd))
    assert status == 0 and "restored 2 record(s)" in out, out + err


def test_import_quarantines_json_that_is_no_record_and_fails_when_nothing_is(tmp_path):
    wd = tmp_path / "wd"
    bogus = tmp_path / "bogus.jsonl"
    bogus.write_text('{"foo": 1}\n')
    _fails("import", str(bogus), "--workdir", str(wd), match="no record in")
    quarantined = [json.loads(line) for line in (wd / "results.quarantine.jsonl").read_text().splitlines()]
    assert [q["line"] for q in quarantined] == [1] and '"foo"' in quarantined[0]["text"]  # kept, not lost
    status, out, err = bench_cli("leaderboard", "--workdir", str(wd))
    assert status == 0 and "(no results)" in out


def test_reading_commands_refuse_a_missing_workdir_and_name_the_stored_datasets(tmp_path):
    missing = tmp_path / "no-such-dir"
    for command in (("leaderboard",), ("diagnose",), ("plot", "eps"), ("export", str(tmp_path / "x.jsonl")),
                    ("retire", "--attack", "pgd10", "--before", "2026-01-01", "--reason", "r")):
        _fails(*command, "--workdir", str(missing), match=f"workdir {missing} does not exist")
    _fails("vae", "show", "--workdir", str(missing), match=f"workdir {missing} does not exist, so it holds no VAE: "
                                                             "run `bench vae train` first")
    plan = ROOT / "leaderboards" / "cifar10-paper-regime.toml"
    _fails("campaign", "compose", str(plan), "--workdir", str(missing),
           match=f"workdir {missing} does not exist, so it holds no campaign: run `bench campaign run {plan}` first")
    _fails("campaign", "probe", str(plan), "--workdir", str(missing), match=f"workdir {missing} does not exist, and "
           f"a probe measures models trained there: run `bench campaign run {plan}` first")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a workdir")
    _fails("campaign", "compose", str(plan), "--workdir", str(a_file), match=f"workdir {a_file} exists and is not a")
    assert not missing.exists() and not (tmp_path / "x.jsonl").exists()
    committed = ROOT / "leaderboards" / "cifar10-regime.csv"
    wd = tmp_path / "wd"
    assert bench_cli("restore", str(committed), "--workdir", str(wd))[0] == 0
    for command in (("leaderboard",), ("diagnose",)):
        _fails(*command, "--workdir", str(wd), "--dataset", "cifar10",
               match="no records of dataset 'cifar10' in")
    err = _fails("diagnose", "--workdir", str(wd), "--dataset", "imagefolder:cifar10-jepg", match="Did you mean")
    assert "Stored: imagefolder:cifar10-jpeg" in err


def test_perf_refuses_zero_repeats_before_its_warm_up():
    _fails("perf", "--only", "pgd_eval_overhead", "--repeats", "0", match="--repeats must be >= 1, got 0")


def test_the_python_api_checks_its_arguments_with_one_clear_error(erm, digits, tmp_path):
    """Found by an audit of the Python API: each bad argument is a BenchError naming it, before any attack runs
    (they had been a record of 0 % for batch_size=-1, tags overwriting measured fields, or a numpy or torch
    error from deep inside); an eps written as on the command line is accepted."""
    import torch

    import varmixup_bench as bench
    from varmixup_bench.core.errors import BenchError

    def refused(match, fn, *args, **kw):
        with pytest.raises(BenchError, match=match):
            fn(*args, **kw)

    quiet = {"record": False, "show_progress": False}
    kw = {**quiet, "split": digits.test.subset(np.arange(40))}
    refused(r"batch_size must be >= 1, got -1", bench.evaluate, erm, "clean", batch_size=-1, **kw)
    refused(r"tags may not set the record's own field\(s\) dataset, robust_acc", bench.evaluate, erm, "clean",
            tags={"robust_acc": 99.0, "dataset": "cifar10"}, **kw)
    refused("tags must be a dict", bench.evaluate, erm, "clean", tags="x", **kw)
    refused("seed must be >= 0, got -1", bench.evaluate, erm, "clean", seed=-1, **kw)
    refused("trials must be an integer, got 1.5", bench.evaluate, erm, "clean", trials=1.5, **kw)
    refused(r"step 5.0 is outside \(0, 1\]", bench.evaluate, erm, "pgd10", step=5.0, **kw)
    refused("evaluate takes a Defense", bench.evaluate, "erm", "clean", **kw)
    refused("split must be a training.data.Split", bench.evaluate, erm, "clean", split=torch.zeros(3), **quiet)
    by_text = bench.evaluate(erm, "pgd10", eps="8/255", **kw)
    assert by_text["eps"] == pytest.approx(8 / 255)
    refused("epochs must be an integer", bench.train, "erm", digits, epochs="1", workdir=tmp_path)
    refused("dataset must be a name", bench.train, "erm", 123, workdir=tmp_path)


def test_from_classifier_checks_the_model_and_keys_it_by_its_weights(erm, digits):
    """A model of one's own: it must take the dataset's images and give one logit per class (a 5-class model had
    scored 10 % clean and failed inside torch's cross-entropy under PGD); two models wrapped under one spec are two
    models (the spec alone had been their key, so reuse returned one model's record for the other)."""
    import copy

    import torch
    from torch import nn

    from varmixup_bench.config.presets import get_preset
    from varmixup_bench.core.errors import BenchError
    from varmixup_bench.defenses.base import Defense

    settings = get_preset("quick")

    def refused(match, *args):
        with pytest.raises(BenchError, match=match):
            Defense.from_classifier(*args)

    five = nn.Sequential(nn.Flatten(), nn.Linear(64, 5))
    refused(r"logits of shape \(batch, 10\) for digits's 10 classes, got \(2, 5\)", five, digits, settings)
    wide = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    refused(r"does not take digits's images \(a batch of shape \(2, 1, 8, 8\)", wide, digits, settings)
    refused("classifier must be a torch.nn.Module, got str", "notamodel", digits, settings)
    refused("settings must be a varmixup_bench.config.presets.Preset", erm.classifier, digits, "quick")
    refused("has no parameters", nn.Flatten(), digits, settings)
    trained = Defense.from_classifier(erm.classifier, digits, settings)
    other = copy.deepcopy(erm.classifier)
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    assert trained.info["config_hash"] != Defense.from_classifier(other, digits, settings).info["config_hash"]
    assert trained.info["config_hash"] == Defense.from_classifier(copy.deepcopy(erm.classifier), digits,
                                                                  settings).info["config_hash"]
    assert trained.info["config_hash"].startswith("external-")


def test_an_import_of_good_and_bad_lines_stores_the_good_and_quarantines_the_rest(tmp_path):
    good = {"dataset": "d", "defense": "erm", "attack": "clean", "eps": 0.0, "clean_acc": 90.0, "robust_acc": 90.0,
            "n_examples": 10, "timestamp": "2026-12-02T00:00:00+00:00"}
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([json.dumps(good), '{"foo": 1}', "not json", json.dumps({**good, "attack": "pgd10"})])
                    + "\n")
    status, out, err = bench_cli("import", str(path), "--workdir", str(tmp_path / "wd"))
    assert status == 0 and "imported 2 record(s)" in out and "2 line(s)" in err and "line 2, 3" in err, out + err


def test_an_unwritable_workdir_is_one_line_not_a_traceback(tmp_path):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        _fails("run", "-d", "erm", "--workdir", str(locked / "wd"), "--epochs", "1", "--no-progress",
               match=f"cannot create workdir {locked / 'wd'}")
    finally:
        locked.chmod(0o700)


def test_a_pooled_metric_interval_keeps_each_seeds_whole_half_width_and_one_seed_is_its_own_test():
    """ECE near 0 has its lower bound cut at 0: the pooled interval takes each seed's wider side, not the cut
    width, and is cut at 0 too; comparison_of_seeds on one seed is that seed's test."""
    from varmixup_bench.results.stats import Comparison, comparison_of_seeds, value_interval_of_seeds

    lo, hi = value_interval_of_seeds([0.5, 0.5, 0.5], [(0.0, 1.5)] * 3)
    assert (lo, hi) == pytest.approx((0.0, 1.5))
    one = comparison_of_seeds([Comparison(2.0, 1.0, 0.0455, True, 100)])
    assert (one.diff, one.se, one.df) == (2.0, 1.0, float("inf")) and one.p == pytest.approx(0.0455, abs=1e-3)


def test_every_did_you_mean_is_case_blind_and_gives_the_valid_spelling():
    """One helper makes every suggestion (registries, stored datasets, zoo models, library attack classes)."""
    from varmixup_bench.core.registry import close_names, unknown_name_message

    assert close_names("PGD10", ["pgd10", "pgd50", "clean"]) == ["pgd10"]
    assert close_names("pdg", ["PGD", "FGSM", "Square"]) == ["PGD"]
    assert close_names("zzz", ["pgd10"]) == []
    assert sorted(close_names("pgd", ["pgd10", "pgd50", "fgsm"], n=3, cutoff=0.4)) == ["pgd10", "pgd50"]
    assert unknown_name_message("attack", "PGD5O", ["pgd50", "clean"]).startswith(
        "unknown attack 'PGD5O'. Did you mean 'pgd50'?")
