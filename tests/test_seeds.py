"""Several training seeds of one defense are one leaderboard row: pooled cells, widened intervals, same images."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from varmixup_bench.results.stats import decode_per_image, encode_per_image, interval_from_summary, wilson_interval


def _record(seed: int, attack: str, acc_correct: np.ndarray, defense: str = "erm") -> dict:
    n = len(acc_correct)
    return {"dataset": "d", "defense": defense, "attack": attack, "threat_model": "white-box", "norm": "Linf",
            "eps": 8 / 255, "step": 2 / 255, "clean_acc": 90.0, "clean_acc_std": 0.0,
            "robust_acc": 100.0 * acc_correct.mean(), "robust_acc_std": 0.0, "trials": 1, "n_examples": n,
            "seconds": 1, "seed": seed, "model": "m", "preset": "p", "device": "cpu", "config_hash": f"h{seed}",
            "eval_hash": f"e{seed}{attack}", "timestamp": f"2026-01-01T00:00:0{seed}", "versions": {},
            "train_config": {"epochs": 5, "lr": 0.001, "batch_size": 128, "recipe_config": {}},
            "train_overrides": {"seed": seed} if seed else {}, "attack_config": {"eps": 8 / 255, "steps": 10},
            "per_image": encode_per_image(np.arange(n), np.ones(n), acc_correct, 1)}


def test_three_seeds_are_one_cell_with_the_seed_spread_in_its_interval():
    from varmixup_bench.views.leaderboard import leaderboard_frame, render_wide, wide_frame
    from varmixup_bench.results.seeds import pool_seeds

    rng = np.random.default_rng(0)
    n = 400
    outcomes = [(rng.random(n) < p).astype(np.uint8) for p in (0.30, 0.40, 0.50)]
    records = [_record(s, "pgd10", o) for s, o in enumerate(outcomes)] + [_record(0, "pgd50", outcomes[0])]
    frame = leaderboard_frame(records)
    pooled = pool_seeds(frame)
    cell = pooled[pooled["attack"] == "pgd10"].iloc[0]
    accs = [100.0 * o.mean() for o in outcomes]
    assert cell["seeds"] == 3 and cell["robust_acc"] == pytest.approx(np.mean(accs))
    lo, hi = interval_from_summary(np.mean(accs), np.std(accs, ddof=1), 3, n)
    assert (cell["robust_acc_ci_low"], cell["robust_acc_ci_high"]) == pytest.approx((lo, hi))
    w_lo, w_hi = wilson_interval(np.mean(accs) / 100 * n, n)
    assert hi - lo > w_hi - w_lo  # the seed spread widens the interval of one seed's images
    per = decode_per_image(cell["per_image"])  # summed over seeds on the same images: paired tests still work
    assert per["trials"] == 3 and np.allclose(per["robust"], np.mean(outcomes, axis=0))
    assert pooled[pooled["attack"] == "pgd50"].iloc[0]["seeds"] == 1
    wide = wide_frame(frame)
    assert len(wide) == 1  # seeds and single-seed columns share the defense's row
    text = render_wide(wide, "md")
    assert "×3" in text and "×S: the mean of S training seeds" in text


def test_different_training_settings_are_never_pooled():
    from varmixup_bench.views.leaderboard import leaderboard_frame
    from varmixup_bench.results.seeds import pool_seeds

    a = np.ones(50, dtype=np.uint8)
    r0, r1 = _record(0, "pgd10", a), _record(1, "pgd10", a)
    r1["train_config"] = {**r1["train_config"], "epochs": 10}
    pooled = pool_seeds(leaderboard_frame([r0, r1]))
    assert len(pooled) == 2 and set(pooled["seeds"]) == {1}


def test_seeds_trained_or_tested_on_other_data_are_never_pooled():
    """The same dataset name over other content (an archive replaced between two seeds' runs) is not one cell."""
    from varmixup_bench.views.leaderboard import leaderboard_frame
    from varmixup_bench.results.seeds import pool_seeds

    a = np.ones(50, dtype=np.uint8)
    r0, r1, r2 = (_record(s, "pgd10", a) for s in (0, 1, 2))
    for r, fp in ((r0, "aaaa"), (r1, "aaaa"), (r2, "bbbb")):
        r["data_fingerprint"] = fp
    pooled = pool_seeds(leaderboard_frame([r0, r1, r2]))
    assert sorted(pooled["seeds"]) == [1, 2]
    assert pooled.loc[pooled["seeds"] == 2, "seed"].item() == "0,1"


def test_seeds_evaluated_with_other_draws_are_never_pooled():
    from varmixup_bench.views.leaderboard import leaderboard_frame
    from varmixup_bench.results.seeds import pool_seeds

    a = np.ones(50, dtype=np.uint8)
    r0, r1, r2 = (_record(s, "pgd10", a, "varmixup+varmi") for s in (0, 1, 2))
    for r, draws in ((r0, 10), (r1, 1), (r2, 10)):
        r.update(stochastic=True, draws=draws, per_image=encode_per_image(np.arange(50), a, a * draws, 1, draws=draws,
                                                                             worst_correct=a))
    pooled = pool_seeds(leaderboard_frame([r0, r1, r2]))
    assert sorted(pooled["seeds"]) == [1, 2]  # seeds 0 and 2 (10 draws) pool; seed 1 (1 draw) stays apart
    old, new = _record(0, "pgd10", a), _record(1, "pgd10", a)
    new["draws"] = 1  # a record written before the field existed pools with one that says 1 draw
    assert list(pool_seeds(leaderboard_frame([old, new]))["seeds"]) == [2]


def test_one_model_from_sweep_and_report_is_one_row():
    """`bench sweep --datasets X` leaves the preset's `dataset` field alone, `bench report --dataset X` sets it:
    the same model's cells from both commands share one row (the old cifar10-cpu-full AT row was split in two)."""
    from varmixup_bench.views.leaderboard import leaderboard_frame, wide_frame

    a = np.ones(50, dtype=np.uint8)
    swept, reported = _record(0, "pgd10", a), _record(0, "pgd50", a)
    reported["train_overrides"] = {"dataset": "imagefolder:../shared/datasets/cifar10-jpeg.tar.gz"}
    wide = wide_frame(leaderboard_frame([swept, reported]))
    assert list(wide["defense"]) == ["erm"]
    other = _record(1, "pgd10", a)  # a setting that does change the model still splits
    other["train_overrides"] = {"seed": 1, "train_subset": 500}
    assert len(wide_frame(leaderboard_frame([swept, other]))) == 2


def _varmixup_record(seed: int, acc_correct: np.ndarray, latent_dim: int = 64) -> dict:
    """A VarMixup record as the harness writes it: the MMD-VAE inside the recipe config is seeded by the training
    seed (the train_config of the old cifar10-cpu-full varmixup+varmi records)."""
    vae = {"adversarial": False, "bandwidth": 128.0, "batch_size": 128, "code": 1, "epochs": 6, "from": None,
           "gamma": 1.0, "latent_dim": latent_dim, "lr": 0.001, "seed": seed, "width": 32}
    return dict(_record(seed, "pgd10", acc_correct, "varmixup+varmi"),
                train_config={"batch_size": 128, "epochs": 6, "lr": 0.001, "recipe_config": {"eta": 1.0, "vae": vae}})


def test_the_vae_seed_follows_the_training_seed_and_pools_with_it():
    from varmixup_bench.views.leaderboard import leaderboard_frame, wide_frame
    from varmixup_bench.results.seeds import pool_seeds

    a = np.ones(50, dtype=np.uint8)
    frame = leaderboard_frame([_varmixup_record(s, a) for s in (0, 1, 2)])
    pooled = pool_seeds(frame)
    assert len(pooled) == 1 and pooled.iloc[0]["seeds"] == 3
    assert len(wide_frame(frame)) == 1  # one row, labelled by the defense alone
    other = leaderboard_frame([_varmixup_record(0, a), _varmixup_record(1, a, latent_dim=32)])
    assert set(pool_seeds(other)["seeds"]) == {1}  # a different VAE is a different recipe, never pooled
    assert len(wide_frame(other)) == 2


def test_subsets_do_not_depend_on_the_training_seed(tmp_path):
    from varmixup_bench.training.runner import make_context

    a = make_context("digits", workdir=tmp_path, preset="quick", seed=0, test_subset=100, train_subset=500,
                     show_progress=False)
    b = make_context("digits", workdir=tmp_path, preset="quick", seed=3, test_subset=100, train_subset=500,
                     show_progress=False)
    assert np.array_equal(a.dataset.test.index.numpy(), b.dataset.test.index.numpy())
    assert np.array_equal(a.dataset.train.index.numpy(), b.dataset.train.index.numpy())
    c = make_context("digits", workdir=tmp_path, preset="quick", seed=0, test_subset=100, subset_seed=5,
                     show_progress=False)
    assert not np.array_equal(a.dataset.test.index.numpy(), c.dataset.test.index.numpy())


def test_intervals_at_zero_and_full_accuracy_contain_the_mean_and_plot(tmp_path):
    from varmixup_bench.views.plots import plot

    assert wilson_interval(0, 1000)[0] == 0.0 and wilson_interval(1000, 1000)[1] == 100.0
    zero = _record(0, "pgd10", np.zeros(1000, dtype=np.uint8))
    lo, hi = wilson_interval(0, 1000)
    zero.update(robust_acc_ci_low=lo, robust_acc_ci_high=hi)
    assert plot([zero], "eps", tmp_path / "zero.png").exists()  # a 0 % cell has a one-sided error bar


def _seeded_cells(rates_a, rates_b, n=1000):
    """Records of two defenses, one per training seed, with independent per-image outcomes at the given rates."""
    rng = np.random.default_rng(1)
    recs = []
    for name, rates in (("a", rates_a), ("b", rates_b)):
        recs += [_record(s, "pgd10", (rng.random(n) < p).astype(np.uint8), defense=name) for s, p in enumerate(rates)]
    return recs


def test_a_gap_between_seed_means_within_the_seeds_spread_gets_no_bold():
    """Seeds move a randomised rule by several points (the CIFAR-10 run: mixup+mi clean 39.5 / 50.8 / 48.2). The
    per-image test of two seed means sees the images only and called such a gap significant."""
    from varmixup_bench.views.leaderboard import best_cells, leaderboard_frame, wide_frame
    from varmixup_bench.results.seeds import pool_seeds
    from varmixup_bench.results.stats import compare_records, paired_outcomes, paired_test

    frame = leaderboard_frame(_seeded_cells((0.55, 0.35, 0.50), (0.40, 0.40, 0.42)))
    pooled = {r["defense"]: r for r in pool_seeds(frame).to_dict("records")}
    a, b = pooled["a"], pooled["b"]
    assert paired_test(*paired_outcomes(a, b)).significant()  # the images alone: "a is better" (the old rule)
    cmp = compare_records(a, b)
    assert cmp.diff == pytest.approx(a["robust_acc"] - b["robust_acc"]) and cmp.diff > 4
    assert not cmp.significant()  # per-seed gaps +15, -5, +8: another three seeds could reverse it
    wide = wide_frame(frame)
    assert "pgd10 ε=8/255" not in {c for _, c in best_cells(wide)}

    # seeds that agree (a 20-point gap on each, give or take its images' noise) are bold even under t with the
    # seeds' 2 df; a 10-point gap is not (p = 0.03 before the column's Holm step)
    agree = wide_frame(leaderboard_frame(_seeded_cells((0.60, 0.60, 0.60), (0.40, 0.40, 0.40))))
    col = "pgd10 ε=8/255"
    assert {agree.iloc[i]["defense"] for i, c in best_cells(agree) if c == col} == {"a"}  # seeds agree: bold


def test_the_seed_term_is_the_paired_t_test_over_seeds():
    """Known answer: with no image noise, `widen_by_seeds` gives scipy's paired t test over the seeds (its p, at
    every level, not only at 5 %: a page decides claims at Holm levels far below), and with one side a single
    model the one-sample t test of the other."""
    from scipy.stats import ttest_1samp, ttest_rel

    from varmixup_bench.results.stats import Comparison, seed_spread, widen_by_seeds

    rng = np.random.default_rng(3)
    for _ in range(200):
        s = int(rng.integers(2, 6))
        va, vb = rng.normal(40, 3, s), rng.normal(38, 3, s)
        a = {str(k): float(v) for k, v in enumerate(va)}
        b = {str(k): float(v) for k, v in enumerate(vb)}
        diff = float(va.mean() - vb.mean())
        ours = widen_by_seeds(Comparison(diff, 0.0, 0.0, True, 1000), *seed_spread(a, b))
        assert ours.p == pytest.approx(ttest_rel(va, vb).pvalue, rel=1e-9) and ours.df == pytest.approx(s - 1)
        single = float(vb[0])
        ours = widen_by_seeds(Comparison(float(va.mean()) - single, 0.0, 0.0, True, 1000), *seed_spread(a, None))
        assert ours.p == pytest.approx(ttest_1samp(va, single).pvalue, rel=1e-9)
    assert seed_spread(None, None) is None
    same = widen_by_seeds(Comparison(1.0, 0.5, 0.0455, True, 1000), *seed_spread({"0": 3.0, "1": 4.0},
                                                                                   {"0": 2.0, "1": 3.0}))
    # equal gaps on every seed: the seed term is 0, but its spread is still estimated with 1 degree of freedom,
    # so p is read from t(1) on the images' SE, as for a spread just above 0 (a z there had made the case of
    # seeds that happen to agree the most decisive of all)
    from scipy.stats import t as student_t

    assert same.se == 0.5 and same.df == 1.0 and same.p == pytest.approx(2 * student_t.sf(2.0, 1))
    nearly = widen_by_seeds(Comparison(1.0, 0.5, 0.0455, True, 1000), *seed_spread({"0": 3.0, "1": 4.0},
                                                                                     {"0": 2.0, "1": 2.999}))
    assert nearly.p == pytest.approx(same.p, rel=1e-3)  # no jump between a tiny spread and none


def test_seed_pooled_p_values_hold_their_level_far_below_five_percent():
    """Under no true difference between two defenses (3 seeds each, image SE 0.3 points, the seeds' spread from
    0.3 to 5 points), the seed-pooled test rejects at most its nominal rate at 5 %, 1.25 %, 0.125 % and 0.05 %, the
    levels a page's Holm steps decide claims at. A normal p on the SE widened for 5 % (the code before 2026-12-01)
    rejected up to 25 times its rate at 0.05 %; Welch–Satterthwaite's df up to 27 times."""
    from varmixup_bench.results.stats import Comparison, seed_spread, widen_by_seeds

    rng = np.random.default_rng(11)
    reps, image_se = 20000, 0.3
    for spread in (0.3, 2.0, 5.0):
        ps = np.empty(reps)
        for i in range(reps):
            va, vb = rng.normal(40, spread, 3), rng.normal(40, spread, 3)
            cmp = Comparison(float(va.mean() - vb.mean()) + rng.normal(0, image_se), image_se, 0.0, True, 1000)
            ps[i] = widen_by_seeds(cmp, *seed_spread(dict(enumerate(map(float, va))),
                                                     dict(enumerate(map(float, vb))))).p
        for level in (0.05, 0.0125, 0.00125, 0.0005):
            rate = float((ps < level).mean())
            assert rate <= level + 3 * math.sqrt(level * (1 - level) / reps), (spread, level, rate)
    wide = widen_by_seeds(Comparison(6.0, 1.0, 0.0, True, 1000), 1.0, 2)
    assert (wide.se, wide.df) == (pytest.approx(math.sqrt(2)), 2.0)
    x = 6.0 / math.sqrt(2)  # t(2)'s tail in closed form: P(T > x) = (1 - x / sqrt(x² + 2)) / 2
    assert wide.p == pytest.approx(1 - x / math.sqrt(x * x + 2), rel=1e-9)  # 0.0513: not 2e-9, z's answer


def test_one_seed_trained_twice_with_and_without_vae_seed_counts_once():
    """vae_seed is not a training setting of the pooled row (seeds 1-2 on the seed-0 VAE pool with seed 0), so a
    workdir holding seed 1 both ways has two records of seed 1: they are one seed (the newer), not two."""
    from varmixup_bench.views.leaderboard import leaderboard_frame
    from varmixup_bench.results.seeds import pool_seeds

    n = 100
    r0 = _record(0, "pgd10", (np.arange(n) < 30).astype(np.uint8))
    old = _record(1, "pgd10", (np.arange(n) < 90).astype(np.uint8))
    new = {**_record(1, "pgd10", (np.arange(n) < 50).astype(np.uint8)), "config_hash": "h1-vae0",
           "eval_hash": "e1-vae0", "timestamp": "2026-02-01T00:00:00",
           "train_overrides": {"seed": 1, "vae_seed": 0}}
    (cell,) = pool_seeds(leaderboard_frame([r0, old, new])).to_dict("records")
    assert cell["seeds"] == 2 and cell["seed"] == "0,1" and cell["robust_acc"] == pytest.approx(40.0)


def test_a_worst_case_not_every_seed_kept_is_missing_not_the_last_seeds_or_the_mean_over_draws():
    """Pooling never makes up a number: when one seed's record lacks the worst case over draws, the pooled cell
    has none (it used to keep the last seed's value as the "mean of seeds"); and a per-image blob of several draws
    without `worst` has no per-image worst case (it used to read the mean over draws as one, and pooling rounded
    a mean of 0.7 to "correct in every draw"), so a paired test of it falls back to the records' summaries."""
    from varmixup_bench.results.seeds import pool_seeds
    from varmixup_bench.results.stats import paired_outcomes

    n, draws = 50, 3
    rng = np.random.default_rng(5)
    recs = []
    for s in range(3):
        correct = rng.integers(0, draws + 1, n)  # correct draws per image, out of 3
        rec = _record(s, "pgd10", correct / draws)
        rec.update(robust_acc_worst=100.0 * float((correct == draws).mean()), robust_acc_worst_std=0.0,
                   per_image=encode_per_image(np.arange(n), np.ones(n), correct, 1, draws=draws,
                                              worst_correct=(correct == draws) if s < 2 else None))
        recs.append(rec)
    recs[1]["robust_acc_worst"] = float("nan")  # seed 1 did not record it (the old code kept seed 2's)
    decoded = decode_per_image(recs[2]["per_image"])
    assert decoded["worst"] is None and set(np.unique(decoded["robust"] * draws)) <= {0, 1, 2, 3}
    assert decode_per_image(recs[0]["per_image"])["worst"] is not None
    assert paired_outcomes(recs[0], recs[2], ("worst", "worst")) is None
    assert paired_outcomes(recs[2], recs[0], ("worst", "robust")) is None
    assert paired_outcomes(recs[0], recs[2], ("worst", "robust")) is not None
    pooled = pool_seeds(pd.DataFrame(recs)).iloc[0]
    assert pooled["seeds"] == 3 and np.isnan(pooled["robust_acc_worst"]) and np.isnan(pooled["robust_acc_worst_ci_low"])
    assert "robust_acc_worst_by_seed" not in pooled or not isinstance(pooled["robust_acc_worst_by_seed"], str)
    assert decode_per_image(pooled["per_image"])["worst"] is None
    assert pooled["robust_acc"] == pytest.approx(np.mean([r["robust_acc"] for r in recs]))
    # a test against the missing pooled worst case is no evidence (it read the NaN as 0 % and found p = 3e-56)
    from varmixup_bench.results.stats import compare_records

    single = dict(recs[0], robust_acc_worst=20.0)
    cmp = compare_records(single, dict(pooled), ("worst", "worst"))
    assert math.isnan(cmp.p) and math.isnan(cmp.diff)


def test_seeds_on_two_versions_of_the_data_are_two_rows_each_with_its_clean_accuracy():
    """Seeds 0 and 1 on one version of the data, seed 2 on another: two pooled groups, so two rows, each saying
    which data it holds; neither row's clean column takes the other's (the later one had, unseen)."""
    from test_headline import _correct, _rec
    from varmixup_bench.views.leaderboard import leaderboard_frame, wide_frame

    recs = []
    for s, fp in ((0, "aaaa"), (1, "aaaa"), (2, "bbbb")):
        for r in (_rec("at", "clean", np.ones(100), seed=s, eps=0.0, threat="none",
                       clean=_correct(100, range(10 * (s + 1)))),
                  _rec("at", "pgd10", _correct(100, range(40 + 5 * s)), seed=s)):
            r["data_fingerprint"] = fp
            recs.append(r)
    wide = wide_frame(leaderboard_frame(recs))
    rows = {r["defense"]: r for r in wide.to_dict("records")}
    assert set(rows) == {"at [data_fingerprint=aaaa]", "at [data_fingerprint=bbbb]"}
    assert rows["at [data_fingerprint=aaaa]"]["clean"]["mean"] == pytest.approx(85.0)
    assert rows["at [data_fingerprint=bbbb]"]["clean"]["mean"] == pytest.approx(70.0)
