"""Bad input found by an audit of the CLI (2026-12-02): each is one line and a non-zero status, never a traceback
or a silent exit 0, and a failing command leaves a workdir that did not exist uncreated."""
from __future__ import annotations

import json
from pathlib import Path

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
