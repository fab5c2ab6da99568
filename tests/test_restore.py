"""A workdir lost with its machine: its records come back from the committed long CSV, and a resumed sweep
retrains its models only after checking that they reproduce the restored clean cells image by image."""
from __future__ import annotations

from pathlib import Path

import pytest

from varmixup_bench.core.errors import BenchError
from varmixup_bench.views.leaderboard import leaderboard_frame, render
from varmixup_bench.results.restore import records_from_csv, restore
from varmixup_bench.results.stats import _pack, decode_per_image
from varmixup_bench.results.store import ResultStore
from varmixup_bench.runs.sweep import SweepSpec, run_sweep

GRID = dict(defenses=["erm", "mixup+mi"], datasets=["digits"], seeds=[0], eps=None, preset="quick")


def _spec(wd: Path, attacks: list[str]) -> SweepSpec:
    return SweepSpec(**GRID, attacks=attacks, workdir=wd, show_progress=False, epochs=2,
                     overrides={"test_subset": 60})


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A finished sweep and its long CSV, as the composer commits it."""
    wd = tmp_path_factory.mktemp("lost")
    run_sweep(_spec(wd, ["clean", "pgd10"]))
    csv = wd / "board.csv"
    csv.write_text(render(leaderboard_frame(ResultStore(wd).records()), "csv"))
    return wd, csv


def test_every_record_field_comes_back_with_its_type(swept):
    wd, csv = swept
    original = {r["sweep_key"]: r for r in ResultStore(wd).records()}
    restored = records_from_csv(csv)
    assert len(restored) == len(original) == 4
    for rec in restored:
        assert rec["restored_from"] == "board.csv"
        assert {k: v for k, v in rec.items() if k != "restored_from"} == original[rec["sweep_key"]]
    assert isinstance(restored[0]["trained"], bool) and isinstance(restored[0]["n_examples"], int)


def test_the_restored_store_renders_the_same_csv_and_restoring_twice_adds_nothing(swept, tmp_path):
    _, csv = swept
    assert restore(csv, tmp_path) == (4, 0)
    assert restore(csv, tmp_path) == (0, 4)
    again = leaderboard_frame(ResultStore(tmp_path).records()).drop(columns=["restored_from"])
    assert render(again, "csv") == csv.read_text()


def test_a_resumed_sweep_retrains_checks_against_the_restored_clean_cells_and_skips_them(swept, tmp_path,
                                                                                        monkeypatch, private_cache):
    import varmixup_bench.runs.sweep as sweep

    _, csv = swept
    restore(csv, tmp_path)
    checked, check = [], sweep.check_reproduced
    monkeypatch.setattr(sweep, "check_reproduced", lambda *a: checked.append((a[1].defense, check(*a))))
    recs, skipped, _ = run_sweep(_spec(tmp_path, ["clean", "pgd10", "fgsm"]))  # no weights: both models retrain
    assert skipped == 4 and sorted((r["defense"], r["attack"]) for r in recs) == [("erm", "fgsm"),
                                                                                 ("mixup+mi", "fgsm")]
    assert sorted(checked) == [("erm", 60), ("mixup+mi", 60)]  # every test image compared, none differed


def test_retrained_weights_that_classify_one_image_differently_are_refused(swept, tmp_path, private_cache):
    _, csv = swept
    restore(csv, tmp_path)
    store = ResultStore(tmp_path)
    records = store.records()
    clean = next(r for r in records if r["defense"] == "erm" and r["attack"] == "clean")
    outcome = (decode_per_image(clean["per_image"])["clean"] * clean["per_image"]["trials"]).astype("uint8")
    outcome[7] = 1 - outcome[7]  # the stored cell saw one image differently from what these weights will
    clean["per_image"] = {**clean["per_image"], "clean": _pack(outcome)}
    for suffix in ("", "-wal", "-shm"):
        Path(str(store.path) + suffix).unlink(missing_ok=True)
    store.extend(records)  # the store as if the cell had been stored with that one image seen differently
    with pytest.raises(BenchError, match=r"erm \(seed 0\) was trained again.*classify 1 of 60 test images "
                                         r"differently.*Retire them"):
        run_sweep(_spec(tmp_path, ["clean", "fgsm"]))


def test_a_csv_that_is_not_a_long_leaderboard_is_refused_by_name(tmp_path):
    with pytest.raises(BenchError, match="no such leaderboard CSV"):
        records_from_csv(tmp_path / "missing.csv")
    wide = tmp_path / "wide.csv"
    wide.write_text("defense,clean,pgd10 ε=8/255\nerm,90.0,1.0\n")
    with pytest.raises(BenchError, match="not a long-layout leaderboard CSV.*lacks the column\\(s\\) dataset, "
                                         "attack, eps"):
        records_from_csv(wide)
