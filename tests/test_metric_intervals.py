"""A metric's value (ECE, local linearity γ, KID, a VAE's PSNR) carries its 95 % interval wherever a page shows it:
the wide table, the claims, the linearity plot; a value pooled over training seeds has the seeds' spread in it."""
from __future__ import annotations

import math

import numpy as np
import pytest

from varmixup_bench.results.stats import encode_per_image, value_interval, value_interval_of_seeds

EPS = 8 / 255


def _metric(defense, attack, metric, value, *, n=400, values=None, details=None, seed=0, eps=0.0):
    """A metric record on images 0..n-1 (all correct), with per-image `values` or `details` where given."""
    ok = np.ones(n, np.uint8)
    r = {"dataset": "d", "defense": defense, "attack": attack, "threat_model": "none", "eps": eps, "norm": "none",
         "step": None, "clean_acc": 100.0, "clean_acc_std": 0.0, "robust_acc": 100.0, "robust_acc_std": 0.0,
         "trials": 1, "n_examples": n, "seconds": 1, "seed": seed, "model": "m", "preset": "p", "device": "cpu",
         "config_hash": f"h-{defense}-{seed}", "eval_hash": f"e-{defense}-{attack}-{seed}", "stochastic": False,
         "draws": 1, "timestamp": "2026-01-01T00:00:00", "versions": {}, "metric": metric, "value": value,
         "per_image": encode_per_image(np.arange(n), ok, ok, 1, values=values)}
    if details is not None:
        r["details"] = details
    return r


def _ece(n=1000, confidence=0.95, accuracy=0.65, seed=0, defense="mixup"):
    from varmixup_bench.results.stats import ece_from

    rng = np.random.default_rng(seed)
    ok = (rng.random(n) < accuracy).astype(np.uint8)
    conf = np.full(n, confidence)
    r = _metric(defense, "ece", "ece_percent", float(ece_from(conf, ok)), n=n, seed=seed)
    r["per_image"] = encode_per_image(np.arange(n), ok, ok, 1, values={"confidence": conf})
    return r


def _gamma(mean, sd, n=400, seed=0, defense="varmixup"):
    g = np.random.default_rng(seed).normal(mean, sd, n).astype(np.float32).astype(np.float64)
    return _metric(defense, "linearity", "local_linearity", float(g.mean()), n=n, values={"gamma": g}, seed=seed,
                   eps=EPS), g


def test_each_metric_gets_the_interval_of_its_own_evidence():
    """ECE: the report's interval (ece_p: ± 1.96 bootstrap SDs), around its estimate; γ: mean ± 1.96 SE of the images' values
    (by hand); KID and PSNR: the interval their measurement stored; nothing to make one from: None."""
    from varmixup_bench.results.stats import Z95, ece_p

    ece = _ece()
    lo, hi = value_interval(ece)
    assert (lo, hi) == pytest.approx(ece_p(ece, 10.0)[3:])
    assert lo < ece["value"] < hi and 1 < hi - lo < 8  # 30 points off on 1,000 images: a few points wide

    rec, g = _gamma(0.05, 0.02)
    half = Z95 * g.std(ddof=1) / math.sqrt(len(g))
    assert value_interval(rec) == pytest.approx((g.mean() - half, g.mean() + half))

    kid = _metric("mixup", "kid", "kid_x1000", 4.5, details={"kid_ci": [3.9, 5.1], "fid": 12.0})
    assert value_interval(kid) == (3.9, 5.1)
    psnr = _metric("varerm", "vae-psnr", "psnr_db", 24.3, details='{"psnr_ci": [24.6, 24.0]}')  # as a store keeps it
    assert value_interval(psnr) == (24.0, 24.6)
    assert value_interval(_metric("erm", "ece", "ece_percent", 3.0)) is None  # no per-image confidences


def test_a_value_pooled_over_seeds_has_their_spread_in_its_interval():
    """Three seeds' γ: the mean of the seeds, the images' half-width the seeds' own (their root mean square: the
    same images in every seed), widened in quadrature by t(2)·s/√3 of the seeds' spread, as an accuracy's interval
    is widened (interval_from_summary); three equal seeds: the one seed's interval."""
    from scipy.stats import t as student_t

    from varmixup_bench.results.seeds import pool_seeds
    from varmixup_bench.views.leaderboard import leaderboard_frame

    recs = [_gamma(m, 0.02, seed=s)[0] for s, m in enumerate((0.04, 0.05, 0.07))]
    pooled = pool_seeds(leaderboard_frame(recs))
    assert len(pooled) == 1 and int(pooled.iloc[0]["seeds"]) == 3
    values = [r["value"] for r in recs]
    halves = [(hi - lo) / 2 for lo, hi in (value_interval(r) for r in recs)]
    # the images' term is the seeds' own half-width (root mean square), not narrowed by 3 seeds on the same images
    half = math.hypot(math.sqrt(sum(h * h for h in halves) / 3),
                      student_t.ppf(0.975, 2) * np.std(values, ddof=1) / math.sqrt(3))
    row = pooled.iloc[0].to_dict()
    assert row["value"] == pytest.approx(np.mean(values))
    assert value_interval(row) == pytest.approx((np.mean(values) - half, np.mean(values) + half))
    # the seeds' spread dominates: far wider than any one seed's interval over its 400 images
    assert 2 * half > 5 * max(halves)
    assert value_interval_of_seeds(values, [value_interval(recs[0]), None, value_interval(recs[2])]) is None
    assert value_interval_of_seeds([0.05] * 3, [(0.04, 0.06)] * 3) == pytest.approx((0.04, 0.06))


def test_the_wide_table_shows_each_value_with_its_interval_and_ranks_none():
    from varmixup_bench.results.stats import metric_figure
    from varmixup_bench.views.leaderboard import best_cells, leaderboard_frame, render_wide, wide_frame

    low, high = _ece(confidence=0.7, accuracy=0.69, defense="erm"), _ece(defense="mixup")
    wide = wide_frame(leaderboard_frame([low, high]))
    md = render_wide(wide, "md")
    for r in (low, high):
        assert f"{metric_figure(r['value'])} [{', '.join(map(metric_figure, value_interval(r)))}]" in md
    assert best_cells(wide) == set() and "**" not in md.split("\n\n")[0]  # far apart, yet no cell is bold
    assert "ECE: ±1.96 bootstrap SDs over the images" in md
    tiny, _ = _gamma(0.0123, 0.004)
    cell = render_wide(wide_frame(leaderboard_frame([tiny])), "csv").splitlines()[1]
    lo, hi = value_interval(tiny)
    assert f"{tiny['value']:.3g} [{lo:.3g}, {hi:.3g}]" in cell  # γ keeps three significant digits, not "0.01"


def test_a_claim_on_a_metric_shows_each_sides_interval():
    from varmixup_bench.campaigns.claims import _interval

    rec = _ece()
    lo, hi = value_interval(rec)
    assert _interval(rec, "value") == f"{rec['value']:.2f} % [{lo:.2f}, {hi:.2f}]"
    assert _interval(_metric("erm", "ece", "ece_percent", 3.0), "value") == "3.00 %"  # nothing to make one from


def test_the_linearity_plot_draws_each_gammas_interval():
    from varmixup_bench.views.plots import curves

    rec, _ = _gamma(0.05, 0.02)
    (points,) = curves([rec], "linearity", None, None).values()
    ((x, y, (below, above)),) = points
    lo, hi = value_interval(rec)
    assert x == pytest.approx(EPS) and (below, above) == pytest.approx((y - lo, hi - y)) and below > 0


def test_the_long_table_shows_a_metric_records_value_not_only_its_accuracy():
    """`bench leaderboard --layout long`: an ECE record's row says its ECE with the interval (its robust acc is its
    clean acc, which alone told a reader nothing about calibration); a table without metric records has no such
    column."""
    from varmixup_bench.results.stats import metric_figure
    from varmixup_bench.views.leaderboard import leaderboard_frame, render

    ece = _ece()
    md = render(leaderboard_frame([ece]), "md")
    lo, hi = value_interval(ece)
    assert "value (unit) [95 % CI]" in md
    assert f"{metric_figure(ece['value'])} % [{metric_figure(lo)}, {metric_figure(hi)}]" in md
    acc = {**_metric("erm", "clean", None, None), "metric": None}
    assert "value (unit)" not in render(leaderboard_frame([acc]), "md")


def test_a_randomised_predictors_ece_over_trials_is_tested_as_its_value_was_measured(mixup_mi, erm):
    """Mixup+MI's ECE over 3 trials is the mean of the trials' ECEs; the mean confidence over trials can give a far
    lower ECE (the draws' spread averaged away: 1 % against 7 % below), which the report, the intervals and the
    claims had used. Now each
    trial's evidence is kept and the bootstrap's estimate is the record's value; a record that kept only the mean
    (older) is untestable, said so, not tested on another number; a deterministic predictor needs no more."""
    import varmixup_bench as bench
    from varmixup_bench.results.stats import compare_values, decode_per_image, ece_from, ece_p

    r = {**bench.evaluate(mixup_mi, "ece", trials=3, record=False, show_progress=False), "stochastic": True}
    d = decode_per_image(r["per_image"])
    assert d["trials"] == 3 and all(f"confidence@{t}" in d["values"] for t in range(3))
    per_trial = [ece_from(d["values"][f"confidence@{t}"], d["values"][f"correct@{t}"]) for t in range(3)]
    assert r["value"] == pytest.approx(np.mean(per_trial), abs=1e-4)
    value, _, _, lo, hi = ece_p(r, 10.0)
    assert value == pytest.approx(r["value"], abs=1e-4) and lo < value < hi
    assert value_interval(r) == pytest.approx((lo, hi))
    # ten draws whose confidences scatter around a calibrated predictor's: each draw's ECE is about 7 %, the ECE of
    # their mean confidence about 1 %; the record's value, its interval and its test are the former
    rng, n, t = np.random.default_rng(0), 1000, 10
    base = rng.uniform(0.3, 0.95, n)
    conf = [np.clip(base + rng.normal(0, 0.15, n), 0.1, 1.0) for _ in range(t)]
    ok = [(rng.random(n) < base).astype(np.float64) for _ in range(t)]
    each = float(np.mean([ece_from(c, o) for c, o in zip(conf, ok)]))
    by_trial = {**{f"confidence@{k}": c for k, c in enumerate(conf)}, **{f"correct@{k}": o for k, o in enumerate(ok)}}
    drawn = {**_metric("mixup+mi", "ece", "ece_percent", each, n=n), "stochastic": True, "trials": t}
    drawn["per_image"] = encode_per_image(np.arange(n), sum(ok), sum(ok), t,
                                          values={"confidence": np.mean(conf, 0), **by_trial})
    assert ece_from(np.mean(conf, 0), np.mean(ok, 0)) < 2 < 5 < each
    lo, hi = value_interval(drawn)
    assert lo < each < hi and lo > 4  # the bootstrap's percentiles sat above the estimate, both above 7.3
    old = {**r, "per_image": encode_per_image(d["idx"], np.rint(d["clean"] * 3), np.rint(d["clean"] * 3), 3,
                                              values={"confidence": d["values"]["confidence"]})}
    assert ece_p(old, 10.0) is None and value_interval(old) is None and compare_values(old, r) is None
    same = compare_values(r, r)
    assert same.diff == 0 and same.se == 0
    det = {**bench.evaluate(erm, "ece", trials=2, record=False, show_progress=False), "stochastic": False}
    assert not any("@" in k for k in decode_per_image(det["per_image"])["values"])  # two equal trials: one pair
    assert ece_p(det, 10.0)[0] == pytest.approx(det["value"], abs=1e-4)
    assert ece_p({**det, "stochastic": np.False_}, 10.0) is not None  # as a pandas row holds it
    assert ece_p({**det, "stochastic": None}, 10.0) is None  # several trials of a predictor not known deterministic


def test_a_finding_on_a_subset_quotes_the_accuracies_it_tested():
    """SPSA on 200 images against PGD on 1,000: the finding's message sets their accuracies on the 200 images both
    evaluated side by side, the gap its test measured (the full-set figures had shown a 3-point gap for the 11
    points tested), and says so; two records on the same images quote their own."""
    from varmixup_bench.results.stats import compare_records, shown_pair

    rng = np.random.default_rng(2)
    ok_w = np.r_[rng.random(200) < 0.45, rng.random(800) < 0.325].astype(np.uint8)
    ok_b = (rng.random(200) < 0.36).astype(np.uint8)
    white = {"robust_acc": 100 * ok_w.mean(), "n_examples": 1000,
             "per_image": encode_per_image(np.arange(1000), np.ones(1000), ok_w, 1)}
    black = {"robust_acc": 100 * ok_b.mean(), "n_examples": 200,
             "per_image": encode_per_image(np.arange(200), np.ones(200), ok_b, 1)}
    cmp = compare_records(white, black)
    w, b, where = shown_pair(white, black)
    assert w - b == pytest.approx(cmp.diff) and where == " on the 200 images both evaluated"
    assert (w, b) == pytest.approx((100 * ok_w[:200].mean(), 100 * ok_b.mean()))
    assert white["robust_acc"] - black["robust_acc"] < 4 < 9 < w - b  # the full sets showed a third of the gap
    assert shown_pair(black, black) == (black["robust_acc"], black["robust_acc"], "")
