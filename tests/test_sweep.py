"""Sweeps: cells filled once, resumed after a kill, equal records on a local Ray; reference round-trip."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from varmixup_bench.views.leaderboard import leaderboard_frame, reference_table, render_wide, wide_frame
from varmixup_bench.runs.sweep import SweepSpec, run_sweep

GRID = dict(defenses=["erm", "mixup+mi"], attacks=["clean", "pgd10"], datasets=["digits"], seeds=[0], eps=None,
            preset="quick")


def _spec(wd, **kw):
    return SweepSpec(**{**GRID, **kw}, workdir=Path(wd), show_progress=False, epochs=2,
                     overrides={"test_subset": 60})


def _records(wd):
    from varmixup_bench.results.store import ResultStore

    return ResultStore(wd).records()


def _values(records):
    return sorted((r["defense"], r["attack"], round(r["clean_acc"], 6), round(r["robust_acc"], 6)) for r in records)


def test_local_sweep_fills_cells_once_and_resumes_to_nothing(tmp_path, monkeypatch):
    recs, skipped, _ = run_sweep(_spec(tmp_path))
    assert len(recs) == 4 and skipped == 0
    assert {(r["defense"], r["attack"]) for r in _records(tmp_path)} == {
        ("erm", "clean"), ("erm", "pgd10"), ("mixup+mi", "clean"), ("mixup+mi", "pgd10")}
    import varmixup_bench.training.runner as runner

    monkeypatch.setattr(runner, "train_classifier", lambda *a, **k: pytest.fail("trained again"))
    recs, skipped, _ = run_sweep(_spec(tmp_path))
    assert recs == [] and skipped == 4 and len(_records(tmp_path)) == 4


def test_killed_sweep_resumes_with_each_cell_once(tmp_path, private_cache):
    wd = tmp_path / "wd"
    cmd = [sys.executable, "-m", "varmixup_bench.cli", "sweep", "--defenses", "erm,mixup", "--attacks", "clean,pgd10,pgd50",
           "--epochs", "3", "--test-subset", "60", "--workdir", str(wd), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(_records(wd)) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(_records(wd))
    assert 1 <= n_before < 6
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    keys = [(r["defense"], r["attack"]) for r in _records(wd)]
    assert len(keys) == 6 and len(set(keys)) == 6
    assert f"{n_before} already in the store" in done.stderr


@pytest.mark.slow
def test_ray_sweep_gives_the_same_records_as_local(tmp_path):
    pytest.importorskip("ray")
    from varmixup_bench.runs.sweep import _with_threads

    # Ray tasks run with one torch thread each (cpus_per_task 1); the local run must too, since float sums (and
    # with them a borderline prediction among 10 draws) differ between thread counts
    local, _, _ = _with_threads(1, run_sweep, _spec(tmp_path / "local"))
    remote, _, _ = run_sweep(_spec(tmp_path / "ray"), "ray", {"num_cpus": 2})
    assert _values(local) == _values(remote)
    assert len(_records(tmp_path / "ray")) == 4
    assert (tmp_path / "ray" / "ray").is_dir()  # Ray's temporary files stay under the workdir
    assert (tmp_path / "ray" / "ray").stat().st_mode & 0o777 == 0o700
    assert not _ray_link(tmp_path / "ray").exists() and not _ray_link(tmp_path / "ray").is_symlink()


def _ray_link(wd):
    import tempfile

    from varmixup_bench.training.cache import config_hash

    temp = Path(wd).resolve() / "ray"
    return Path(tempfile.gettempdir()) / f"vb-ray-{config_hash({'workdir': str(temp)})[:10]}"


class _FakeRay:
    """Stands in for `ray` to test the executor's own housekeeping: it records init's temp dir, widens the
    directory's permissions as a running Ray may, and runs remote functions in process."""

    def __init__(self):
        self.initialized, self.temp_dir, self.link_target = False, None, None

    def is_initialized(self):
        return self.initialized

    def init(self, **kw):
        self.initialized, self.temp_dir = True, kw["_temp_dir"]
        self.link_target = Path(self.temp_dir).resolve()
        Path(self.temp_dir).resolve().chmod(0o777)

    def remote(self, **_res):
        return lambda fn: type("R", (), {"remote": staticmethod(lambda *a: fn(*a))})

    def get(self, refs):
        return refs

    def shutdown(self):
        self.initialized = False


def test_ray_executor_keeps_its_temp_dir_private_and_removes_its_link(tmp_path, monkeypatch):
    fake = _FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    recs, _, _ = run_sweep(_spec(tmp_path, defenses=["erm"], attacks=["clean"]), "ray", {"num_cpus": 1})
    assert len(recs) == 1
    assert Path(fake.temp_dir) == _ray_link(tmp_path)  # Ray was given the short link ...
    assert fake.link_target == (tmp_path / "ray").resolve()  # ... into the workdir
    assert (tmp_path / "ray").stat().st_mode & 0o777 == 0o700  # private again after Ray widened it
    assert not _ray_link(tmp_path).is_symlink()  # no dangling vb-ray-* link left behind


def test_reference_numbers_round_trip_unchanged(tmp_path):
    ref = reference_table("paper")
    row = ref[(ref.dataset == "cifar10") & (ref.defense == "varmixup+varmi") & (ref.attack == "pgd10")].iloc[0]
    assert (row.robust_acc, row.robust_acc_std, row.clean_acc) == (66.84, 1.08, 82.15)
    records = [{"dataset": "mine", "defense": "varmixup+varmi", "attack": "pgd10", "threat_model": "oblivious",
                "eps": 8 / 255, "step": 2 / 255, "clean_acc": 50.0, "clean_acc_std": 0.0, "robust_acc": 40.0,
                "robust_acc_std": 1.0, "trials": 2, "n_examples": 100, "timestamp": "t", "versions": {}}]
    wide = wide_frame(leaderboard_frame(records), "paper", "cifar10")
    assert wide.loc[0, "paper: pgd10 ε=8/255 [Table 2]"] == "66.84 ± 1.08"
    assert wide.loc[0, "paper: clean [Table 2]"] == "82.15"
    assert "paper: corruptions [Table 4]" not in wide.columns  # Table 4 has no VarMixup + VarMI row
    md = render_wide(wide, "md")
    assert "66.84 ± 1.08" in md and "40.0 [27.2, 53.3]ᵒ" in md  # 2 trials: t(1)·s/√2 widens the Wilson interval
    html = render_wide(wide, "html")
    assert html.startswith("<!doctype html>") and "<script>" in html and "66.84 ± 1.08" in html


def test_wide_columns_follow_attack_order_not_record_order():
    def rec(attack, eps, defense="erm"):
        return {"dataset": "d", "defense": defense, "attack": attack, "threat_model": "white-box", "eps": eps,
                "step": 0.0, "clean_acc": 50.0, "clean_acc_std": 0.0, "robust_acc": 10.0, "robust_acc_std": 0.0,
                "trials": 1, "n_examples": 10, "timestamp": attack, "versions": {}}

    # records arrive spsa first, clean last, and a second defense brings a column the first lacks
    records = [rec("spsa", 8 / 255), rec("corruptions", 0.0), rec("pgd50", 8 / 255), rec("pgd10", 8 / 255),
               rec("clean", 0.0), rec("adaptive-pgd10", 8 / 255, "mixup"), rec("clean", 0.0, "mixup")]
    cols = list(wide_frame(leaderboard_frame(records)).columns)
    assert cols == ["dataset", "defense", "clean", "pgd10 ε=8/255", "pgd50 ε=8/255", "adaptive-pgd10 ε=8/255",
                    "spsa ε=8/255", "corruptions"]


def test_lambda_mi_sweep_records_each_value_and_lambda_one_is_plain(tmp_path):
    from varmixup_bench.runs.sweep import variants

    spec = SweepSpec(defenses=["mixup+mi", "mixup"], attacks=["pgd10"], datasets=["digits"], seeds=[0], eps=None,
                     preset="quick", workdir=tmp_path, show_progress=False, epochs=2, overrides={"test_subset": 60},
                     grid=variants([0.5, 1.0]))
    recs, _, _ = run_sweep(spec)
    mi = {r["inference_config"]["lambda_mi"]: r for r in recs if r["defense"] == "mixup+mi"}
    plain = [r for r in recs if r["defense"] == "mixup"]
    assert set(mi) == {0.5, 1.0} and len(plain) == 2
    assert mi[1.0]["robust_acc"] == plain[0]["robust_acc"] and mi[1.0]["clean_acc"] == plain[0]["clean_acc"]
    assert len({r["config_hash"] for r in recs}) == 1  # lambda_MI changes inference, never the training


def test_plots_are_written_from_records(tmp_path):
    from PIL import Image

    from varmixup_bench.views.plots import curves, plot

    recs = [{"dataset": "d", "defense": d, "attack": "pgd10", "eps": e, "robust_acc": 90 - 200 * e + k,
             "robust_acc_std": 1.0, "timestamp": "t", "inference_config": {"lambda_mi": 0.5},
             "train_config": {"recipe_config": {"eta": 1.0}}} for k, d in enumerate(["erm", "mixup"])
            for e in (0.0, 4 / 255, 8 / 255)]
    data = curves(recs, "eps")
    assert [x for x, _, _ in data["erm"]] == [0.0, 4 / 255, 8 / 255]
    assert data["mixup"][0][1] == 91
    path = plot(recs, "eps", tmp_path / "eps.png")
    assert Image.open(path).size[0] > 300
    with pytest.raises(Exception, match="no records"):
        plot(recs, "linearity", tmp_path / "lin.png")


def test_an_eps_curve_never_joins_points_of_different_training_seeds():
    """The old cifar10-cpu-full store: seed 0 has the whole eps curve, seeds 1 and 2 only ε = 8/255 (written later).
    The curve is seed 0's, labelled so; a later seed's 8/255 point never replaces seed 0's."""
    from varmixup_bench.views.plots import curves

    def rec(seed, e, acc, t):
        return {"dataset": "d", "defense": "mixup+mi", "attack": "pgd10", "eps": e, "robust_acc": acc, "seed": seed,
                "timestamp": t, "robust_acc_ci_low": acc - 1, "robust_acc_ci_high": acc + 1}

    recs = [rec(0, e, a, "2026-01-01") for e, a in ((2 / 255, 20.0), (8 / 255, 1.6), (16 / 255, 0.2))]
    recs += [rec(1, 8 / 255, 4.8, "2026-02-01"), rec(2, 8 / 255, 3.0, "2026-03-01")]
    data = curves(recs, "eps")
    assert list(data) == ["mixup+mi (seed 0)"]
    assert [(round(x * 255), y) for x, y, _ in data["mixup+mi (seed 0)"]] == [(2, 20.0), (8, 1.6), (16, 0.2)]
    tie = curves([rec(2, 8 / 255, 3.0, "t"), rec(1, 8 / 255, 4.8, "t")], "eps")
    assert tie == {"mixup+mi (seed 1)": [(8 / 255, 4.8, (1.0, 1.0))]}  # a tie: the lowest seed


def test_an_eps_curve_takes_its_own_step_at_each_radius_not_the_newest_record():
    """The eps/4 curve at 2, 8 and 16/255, and later PGD-10 at 8/255 with the paper's step of 8/255 (a weaker
    attack): the curve's 8/255 point stays its own (the newest record had taken it, a bump in a falling curve)."""
    from varmixup_bench.views.plots import curves

    def rec(e, acc, step, t):
        return {"dataset": "d", "defense": "at", "attack": "pgd10", "eps": e, "step": step, "robust_acc": acc,
                "timestamp": t, "robust_acc_ci_low": acc - 1, "robust_acc_ci_high": acc + 1}

    recs = [rec(e, a, e / 4, "2026-01-01") for e, a in ((2 / 255, 60.0), (8 / 255, 38.0), (16 / 255, 12.0))]
    data = curves(recs + [rec(8 / 255, 55.0, 8 / 255, "2026-02-01")], "eps")
    assert [(round(x * 255), y) for x, y, _ in data["at"]] == [(2, 60.0), (8, 38.0), (16, 12.0)]


def test_sweep_reruns_cells_whose_model_or_attack_settings_changed(tmp_path):
    grid = dict(GRID, defenses=["erm"], attacks=["pgd10", "adaptive-pgd10"])
    recs, skipped, _ = run_sweep(_spec(tmp_path, **grid))
    assert len(recs) == 2 and skipped == 0
    # an attack setting (N_A) changes only the adaptive cell's key
    spec = _spec(tmp_path, **grid)
    spec.overrides = {**spec.overrides, "n_adaptive": 3}
    recs, skipped, _ = run_sweep(spec)
    assert [r["attack"] for r in recs] == ["adaptive-pgd10"] and skipped == 1
    # a training change (epochs) retrains the model and reruns every cell
    recs, skipped, _ = run_sweep(_spec(tmp_path, **grid).__class__(**{**_spec(tmp_path, **grid).__dict__, "epochs": 3}))
    assert len(recs) == 2 and skipped == 0
    # a step change reruns pgd10, and the leaderboard shows both results apart instead of keeping "the latest"
    spec = _spec(tmp_path, **grid)
    spec.overrides = {**spec.overrides, "step": 1 / 255}
    recs, _, _ = run_sweep(spec)
    assert "pgd10" in [r["attack"] for r in recs]
    frame = leaderboard_frame(_records(tmp_path))
    assert len(frame[frame["attack"] == "pgd10"]) == 3  # 2 epochs at two steps, 3 epochs
    wide = wide_frame(frame)
    assert any("[epochs=3]" in d for d in wide["defense"]) and any("step=" in c for c in wide.columns)


def test_retire_moves_wrong_records_out_of_every_table_and_keeps_them_with_the_reason(tmp_path):
    """An attack fixed after its records were stored: `bench retire` takes exactly those records out of
    the current results (the table and reuse stop seeing them); the store keeps them with the reason."""
    from varmixup_bench.core.errors import BenchError
    from varmixup_bench.results.retire import retire_records
    from varmixup_bench.results.store import ResultStore

    store = ResultStore(tmp_path)
    for defense, attack, t in (("mi", "adaptive-apgd", "2026-11-23T09:51:54+00:00"),
                               ("mi", "adaptive-pgd10", "2026-11-23T09:00:00+00:00"),
                               ("erm", "adaptive-apgd", "2026-11-23T09:52:00+00:00"),
                               ("mi", "adaptive-apgd", "2026-11-23T11:30:00+00:00")):  # the fixed attack's
        store.append({"defense": defense, "attack": attack, "timestamp": t, "eps": 8 / 255, "seed": 0})
    listed = retire_records(tmp_path, "adaptive-apgd", "2026-11-23T10:40", "EOT loss of one draw", "mi", dry_run=True)
    assert [r["timestamp"] for r in listed] == ["2026-11-23T09:51:54+00:00"] and len(store.records()) == 4
    gone = retire_records(tmp_path, "adaptive-apgd", "2026-11-23T10:40", "EOT loss of one draw", "mi")
    assert len(gone) == 1
    left = [(r["defense"], r["attack"], r["timestamp"][11:16]) for r in store.records()]
    assert left == [("mi", "adaptive-pgd10", "09:00"), ("erm", "adaptive-apgd", "09:52"), ("mi", "adaptive-apgd", "11:30")]
    retired = store.retired()
    assert retired == [{**gone[0], "retired_reason": "EOT loss of one draw"}]
    with pytest.raises(BenchError, match="no records of attack 'adaptive-apdg'.*adaptive-apgd, adaptive-pgd10"):
        retire_records(tmp_path, "adaptive-apdg", "2026-11-23T10:40", "typo")
    # a whole training seed (its weights lost): every attack of that seed and no other
    store.append({"defense": "mi", "attack": "clean", "timestamp": "2026-11-23T09:00:00+00:00", "eps": 0, "seed": 1})
    gone = retire_records(tmp_path, None, "2026-11-23T12:00", "weights lost", seed=0)
    assert len(gone) == 3 and [(r["attack"], r["seed"]) for r in store.records()] == [("clean", 1)]
    with pytest.raises(BenchError, match="no records of seed 2 in .*its seeds: 1"):
        retire_records(tmp_path, None, "2026-11-23T12:00", "x", seed=2)
    with pytest.raises(BenchError, match="an --attack, a --seed, or both"):
        retire_records(tmp_path, None, "2026-11-23T12:00", "x")
    with pytest.raises(BenchError, match="not an ISO time"):
        retire_records(tmp_path, "adaptive-apgd", "yesterday", "x")
    with pytest.raises(BenchError, match="--reason must say why"):
        retire_records(tmp_path, "adaptive-apgd", "2026-11-23T10:40", " ")


def test_sweep_takes_a_per_recipe_epochs_table_through_set(tmp_path):
    """`--set 'epochs={...}'` is the preset's per-recipe table; it used to collide with train()'s one-number
    `epochs` override (TypeError: multiple values for keyword argument 'epochs')."""
    from tests_cli_helper import bench_cli

    code, _, err = bench_cli("sweep", "--defenses", "erm", "--attacks", "clean", "--set", 'epochs={"erm": 1}',
                             "--test-subset", "50", "--workdir", str(tmp_path), "--no-progress")
    assert code == 0, err
    (rec,) = _records(tmp_path)
    assert rec["train_config"]["epochs"] == 1 and rec["train_overrides"]["epochs"] == {"erm": 1}


def test_a_sweep_plot_keeps_each_model_and_radius_on_its_own_line():
    """Fig. 6 from a store that holds, at lambda_MI = 0.5, the eta = 1 model (20 %) and a later eta = 2 model (35 %),
    and an eps = 0.5 record of the eta = 1 model (1 %). Fig. 6b: the eta = 1 line keeps its own 20 % at 0.5 (the
    latest record per (defense, seed, x) used to take the eta = 2 model's or the eps = 0.5 record), and a line of one
    point (the other model, the other radius) is no sweep. Fig. 6a: eta is a training setting, so its line joins
    the two models at lambda_MI = 0.5, and a defense with one eta is left out."""
    from varmixup_bench.views.plots import curves

    def rec(model, eta, lam, acc, t, eps=8 / 255, defense="varmixup+varmi"):
        return {"dataset": "d", "defense": defense, "attack": "adaptive-pgd10", "eps": eps, "seed": 0,
                "config_hash": model, "robust_acc": acc, "timestamp": t, "inference_config": {"lambda_mi": lam},
                "train_config": {"recipe_config": {"eta": eta}, "epochs": 24}}

    recs = [rec("m1", 1.0, 0.2, 10.0, "1"), rec("m1", 1.0, 0.5, 20.0, "2"), rec("m1", 1.0, 1.0, 30.0, "3"),
            rec("m2", 2.0, 0.5, 35.0, "4"), rec("m1", 1.0, 0.5, 1.0, "5", eps=0.5),
            rec("k1", 1.0, 0.5, 50.0, "6", defense="iat+mi")]
    lam = {k: [(x, y) for x, y, _ in v] for k, v in curves(recs, "lambda-mi", "adaptive-pgd10").items()}
    assert lam == {"varmixup+varmi": [(0.2, 10.0), (0.5, 20.0), (1.0, 30.0)]}
    # the eta = 1 point is the lambda_MI = 0.5 record, not the later lambda_MI = 1 one of the same model: an eta
    # line is one inference setting (the lambda 0.2 and 1.0 "lines" have one point each, no sweep)
    eta = {k: [(x, y) for x, y, _ in v] for k, v in curves(recs, "eta", "adaptive-pgd10").items()}
    assert eta == {"varmixup+varmi": [(1.0, 20.0), (2.0, 35.0)]}
