"""Statistics of the numbers: Wilson intervals and trial spread in records, per-image results, bold marks only
beyond noise (`results/stats.py`, the leaderboard), and diagnostics that do not fire on sampling noise."""
from __future__ import annotations

import json

import numpy as np
import pytest

import varmixup_bench as bench
from varmixup_bench.training.data import stratified_subset


# ---- 12. intervals ----

@pytest.mark.parametrize("k,n", [(15, 50), (0, 20), (20, 20), (280, 1000), (1, 3)])
def test_wilson_interval_matches_scipy(k, n):
    from scipy.stats import binomtest

    from varmixup_bench.results.stats import wilson_interval

    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(100 * ci.low, abs=1e-6) and hi == pytest.approx(100 * ci.high, abs=1e-6)


def test_records_carry_intervals_that_contain_the_mean_and_widen_with_trial_spread(mixup_mi, digits):
    sub = stratified_subset(digits.test, 100, 0, "test")
    one = bench.evaluate(mixup_mi, "pgd10", split=sub, trials=1, record=False, show_progress=False)
    three = bench.evaluate(mixup_mi, "pgd10", split=sub, trials=3, record=False, show_progress=False)
    for r in (one, three):
        for w in ("clean", "robust"):
            assert r[f"{w}_acc_ci_low"] <= r[f"{w}_acc"] <= r[f"{w}_acc_ci_high"]
            assert r[f"{w}_acc_ci_high"] - r[f"{w}_acc_ci_low"] > 0  # never "± 0.00"
    from varmixup_bench.results.stats import accuracy_interval

    assert accuracy_interval([50.0, 60.0, 55.0], 100)[1] - accuracy_interval([55.0], 100)[1] > 0


def test_per_image_results_round_trip(mixup_mi, digits):
    from varmixup_bench.results.stats import decode_per_image

    sub = stratified_subset(digits.test, 80, 1, "test")
    r = bench.evaluate(mixup_mi, "pgd10", split=sub, trials=2, record=False, show_progress=False)
    p = decode_per_image(json.loads(json.dumps(r["per_image"])))
    assert np.array_equal(p["idx"], sub.index.numpy())
    assert p["trials"] == 2
    assert 100 * p["robust"].mean() == pytest.approx(r["robust_acc"])
    assert 100 * p["clean"].mean() == pytest.approx(r["clean_acc"])


def test_condition_counts_round_trip_pool_over_seeds_and_exclude_draws():
    """Per-image counts over fixed conditions (corruptions: 15 x 5) decode as fractions with no worst case over
    draws, pool over training seeds as counts, and cannot be mixed with draws of a randomised predictor."""
    from varmixup_bench.results.seeds import _pooled_per_image
    from varmixup_bench.results.stats import decode_per_image, encode_per_image

    idx, clean = np.arange(4), np.array([1, 1, 0, 1])
    a = encode_per_image(idx, clean, np.array([75, 60, 0, 3]), 1, conditions=75)
    b = encode_per_image(idx, clean, np.array([70, 75, 1, 0]), 1, conditions=75)
    p = decode_per_image(json.loads(json.dumps(a)))
    assert p["conditions"] == 75 and np.allclose(p["robust"], [1, 0.8, 0, 0.04]) and np.array_equal(p["worst"], p["robust"])
    pooled = decode_per_image(_pooled_per_image([a, json.dumps(b)]))
    assert pooled["trials"] == 2 and pooled["conditions"] == 75
    assert np.allclose(pooled["robust"], np.array([145, 135, 1, 3]) / 150)
    assert _pooled_per_image([a, encode_per_image(idx, clean, clean, 1)]) is None  # 75 conditions vs one attack
    with pytest.raises(ValueError, match="draws .* or conditions"):
        encode_per_image(idx, clean, clean, 1, draws=10, conditions=75)


# ---- 13. bold only beyond noise ----

def _cell_records(accs, n=50, per_image=True, seed=0):
    from varmixup_bench.results.stats import encode_per_image

    rng = np.random.default_rng(seed)
    out = []
    for d, a in enumerate(accs):
        k = int(round(a * n / 100))
        correct = np.zeros(n, dtype=np.uint8)
        correct[rng.permutation(n)[:k]] = 1
        r = {"dataset": "d", "defense": f"def{d}", "attack": "spsa", "threat_model": "black-box", "eps": 8 / 255,
             "step": None, "clean_acc": 90.0, "clean_acc_std": 0.0, "robust_acc": 100 * k / n, "robust_acc_std": 0.0,
             "trials": 1, "n_examples": n, "seconds": 1, "seed": 0, "model": "m", "preset": "p", "device": "cpu",
             "config_hash": f"h{d}", "eval_hash": f"e{d}", "timestamp": "2026-01-01T00:00:00", "versions": {}}
        if per_image:
            r["per_image"] = encode_per_image(np.arange(n), np.ones(n), correct, 1)
        out.append(r)
    return out


@pytest.mark.parametrize("per_image", [True, False])
def test_bold_marks_only_a_significant_best(per_image):
    from varmixup_bench.views.leaderboard import leaderboard_frame, render_wide, wide_frame

    tied = render_wide(wide_frame(leaderboard_frame(_cell_records([30, 30, 28], per_image=per_image))), "md")
    assert "**" not in tied  # SPSA 30.00 on 15/50 for three defenses: no "best"
    clear = render_wide(wide_frame(leaderboard_frame(_cell_records([90, 20, 18], n=200, per_image=per_image))), "md")
    assert clear.count("**") == 2 and "bold: significantly above every other row" in clear


# ---- 14. diagnostics do not fire on noise ----

def test_two_evaluations_of_one_randomised_predictor_never_fire(mixup_mi, digits):
    from varmixup_bench.views.diagnostics import diagnose
    from varmixup_bench.views.leaderboard import leaderboard_frame

    sub = stratified_subset(digits.test, 200, 0, "test")
    for seed in range(3):
        a = bench.evaluate(mixup_mi, "clean", split=sub, seed=seed, record=False, show_progress=False)
        b = bench.evaluate(mixup_mi, "clean", split=sub, seed=seed + 100, record=False, show_progress=False)
        # present the two draws as pgd10 and pgd50 at one eps: pure noise, the same images
        recs = [dict(a, attack="pgd10", threat_model="oblivious", eps=8 / 255, timestamp="1"),
                dict(b, attack="pgd50", threat_model="oblivious", eps=8 / 255, timestamp="2")]
        assert diagnose(leaderboard_frame(recs)) == []


def test_paired_test_catches_a_real_gap_that_unpaired_intervals_miss():
    from varmixup_bench.results.stats import encode_per_image, compare_records

    n = 200
    a = np.ones(n)
    b = a.copy()
    b[:12] = 0  # b loses 12 images and wins none: 6 points, paired p = 2^-11
    ra = {"robust_acc": 100.0 * a.mean(), "n_examples": n, "trials": 1, "per_image": encode_per_image(np.arange(n), a, a, 1)}
    rb = {"robust_acc": 100.0 * b.mean(), "n_examples": n, "trials": 1, "per_image": encode_per_image(np.arange(n), b, b, 1)}
    cmp = compare_records(ra, rb)
    assert cmp.paired and cmp.significant() and cmp.a_above_b()
