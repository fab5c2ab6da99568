"""Accuracies are proportions over n images: 95 % intervals, per-image outcomes, and paired / unpaired tests.

One place for every noise rule of the harness: records get their intervals here, leaderboards their bold marks,
diagnostics their "significantly different" decisions.

- One trial: the Wilson score interval of k correct out of n.
- T > 1 trials on the same n images: the Wilson interval around the mean accuracy, each side widened in
  quadrature by t_{T-1, 0.975} * s / sqrt(T) (s = sample std of the per-trial accuracies), so both the choice of
  images and the trial-to-trial randomness (attack start, MI draws) are covered.
- Two cells with per-image outcomes on common images: a paired test on the per-image differences (exact
  McNemar when both are single-trial 0/1 outcomes); otherwise an unpaired z test whose standard errors combine
  the binomial error and the trial spread.
- Two means over training seeds (pooled cells): the test of the images, widened by t_{S-1} times the standard
  error of the seeds' spread (paired by seed where both cells hold the same seeds), as their intervals are.
"""
from __future__ import annotations

import base64
import math
import zlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

Z95 = 1.959963984540054
TRIAL_INTERVAL_NOTE = ("95 % interval: Wilson score interval over the n images (one trial); with T trials the "
                       "Wilson interval around the mean, widened in quadrature by t(T-1)·s/√T of the trial spread")


def wilson_interval(k: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (percent) for k successes out of n."""
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k <= 0 else max(0.0, centre - half)  # exact at the ends: 0 of n has lower bound 0, not 2e-17
    hi = 1.0 if k >= n else min(1.0, centre + half)
    return 100.0 * lo, 100.0 * hi


def accuracy_interval(per_trial: Sequence[float], n: int) -> tuple[float, float]:
    """95 % interval (percent) of a mean accuracy from per-trial accuracies (percent) over the same n images."""
    vals = np.asarray(per_trial, dtype=float)
    std = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    return interval_from_summary(float(vals.mean()), std, len(vals), n)


def interval_from_summary(mean: float, std: float, trials: int, n: int) -> tuple[float, float]:
    """The same interval from a mean, the trials' sample std and the trial count (as records store them): the
    Wilson interval around the mean, each side widened in quadrature by t(T-1)·s/√T."""
    lo, hi = wilson_interval(mean / 100.0 * n, n)
    if trials > 1 and std:
        from scipy.stats import t as student_t

        spread = float(student_t.ppf(0.975, trials - 1) * std / math.sqrt(trials))
        lo = mean - math.hypot(mean - lo, spread)
        hi = mean + math.hypot(hi - mean, spread)
    return max(0.0, lo), min(100.0, hi)


def standard_error(acc: float, n: int, std: float = 0.0, trials: int = 1) -> float:
    """Standard error (percentage points) of a mean accuracy: binomial over n images plus the trial spread."""
    p = min(max(acc / 100.0, 0.0), 1.0)
    binom = 100.0 * math.sqrt(max(p * (1 - p), 0.25 / max(n, 1)) / max(n, 1))  # never 0 at p = 0 or 1
    spread = (std or 0.0) / math.sqrt(max(trials, 1))
    return math.hypot(binom, spread)


# ---- per-image outcomes, stored compactly in records ----

def _pack(arr: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(arr).tobytes(), 9)).decode("ascii")


def _unpack(text: str, dtype) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=dtype)


def encode_per_image(indices: np.ndarray, clean_correct: np.ndarray, robust_correct: np.ndarray, trials: int,
                     draws: int = 1, worst_correct: np.ndarray | None = None,
                     values: dict[str, np.ndarray] | None = None, conditions: int = 1) -> dict:
    """{'idx', 'clean', 'robust', 'trials'[, 'draws', 'worst']}: test-set indices (uint32) and, per image, how
    many of the trials classified it correctly (uint8), zlib + base64; 1000 images take about 2 KB. With
    `draws` > 1 (a randomised predictor classifying each adversarial example several times) `robust` counts
    correct draws over trials × draws (uint16) and `worst` the trials in which every draw was correct. `values`:
    named per-image numbers of a metric (float32, mean over trials), e.g. ECE's confidences or linearity's
    gamma, for paired tests of metric values (compare_values). With `conditions` > 1 (a measurement that
    classifies each image under several fixed conditions, e.g. 15 corruptions x 5 severities) `robust` counts
    the correct conditions over trials x conditions (uint16): not draws of a randomised predictor, so no worst
    case over them."""
    if conditions > 1 and (draws > 1 or worst_correct is not None):
        raise ValueError("per-image results count either draws of a randomised predictor or conditions, not both")
    out = {"idx": _pack(np.asarray(indices, dtype=np.uint32)), "clean": _pack(np.asarray(clean_correct, np.uint8)),
           "trials": int(trials)}
    if conditions > 1:
        out.update(robust=_pack(np.asarray(robust_correct, np.uint16)), conditions=int(conditions))
    elif draws > 1 or worst_correct is not None:
        out.update(robust=_pack(np.asarray(robust_correct, np.uint16)), draws=int(draws))
        if worst_correct is not None:
            out["worst"] = _pack(np.asarray(worst_correct, np.uint8))
    else:
        out["robust"] = _pack(np.asarray(robust_correct, np.uint8))
    if values:
        out["values"] = {k: _pack(np.asarray(v, np.float32)) for k, v in values.items()}
    return out


def decode_per_image(blob: Any) -> dict[str, np.ndarray] | None:
    """The arrays of encode_per_image (None for records without per-image results) as fractions in [0, 1]:
    clean and robust per image, and `worst` (correct in every draw; equal to robust where there is no draw
    count); `conditions`: how many fixed conditions each trial's robust count is over (1 for an attack)."""
    if isinstance(blob, str):
        import json

        blob = json.loads(blob)
    if not isinstance(blob, dict) or "idx" not in blob:
        return None
    t = max(int(blob.get("trials", 1)), 1)
    c = max(int(blob.get("conditions", 1)), 1)
    if c > 1:
        robust = _unpack(blob["robust"], np.uint16) / (t * c)
        worst = robust
    elif "draws" in blob:
        d = max(int(blob["draws"]), 1)
        robust = _unpack(blob["robust"], np.uint16) / (t * d)
        # no worst stored: with one draw it is the robust outcome; with several it is unknown, not their mean
        worst = _unpack(blob["worst"], np.uint8) / t if "worst" in blob else (robust if d == 1 else None)
    else:
        robust = _unpack(blob["robust"], np.uint8) / t
        worst = robust
    return {"idx": _unpack(blob["idx"], np.uint32).astype(np.int64),
            "clean": _unpack(blob["clean"], np.uint8) / t, "robust": robust, "worst": worst, "trials": t,
            "conditions": c,
            "values": {k: _unpack(v, np.float32).astype(np.float64) for k, v in (blob.get("values") or {}).items()}}


# ---- comparing two cells ----

@dataclass(frozen=True)
class Comparison:
    """a − b in percentage points, its standard error, and a two-sided p value; `df` the degrees of freedom of
    the t distribution that p is read from (inf: a z test, as every per-image test here; finite once training
    seeds' spread is part of the error, widen_by_seeds)."""

    diff: float
    se: float
    p: float
    paired: bool
    n: int
    df: float = math.inf

    def p_against(self, shift: float) -> float:
        """The two-sided p value of the difference against `shift` instead of 0, from the same distribution."""
        d = self.diff - shift
        if not self.se > 0:
            return 1.0 if d == 0 else 0.0
        from scipy.stats import norm, t as student_t

        tail = norm.sf(abs(d) / self.se) if math.isinf(self.df) else student_t.sf(abs(d) / self.se, self.df)
        return float(2 * tail)

    @property
    def z(self) -> float:
        return self.diff / self.se if self.se > 0 else (0.0 if self.diff == 0 else math.copysign(math.inf, self.diff))

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p < alpha

    def a_above_b(self, z: float = 2.0) -> bool:
        """a exceeds b by more than z standard errors of the difference."""
        return self.z > z


def paired_outcomes(a: dict, b: dict, which: tuple[str, str] = ("robust", "robust")):
    """Per-image fractions of a and b on their common images, or None when either has no per-image results."""
    return _paired(decode_per_image(a.get("per_image")), decode_per_image(b.get("per_image")), which)


def _paired(pa: dict | None, pb: dict | None, which: tuple[str, str]):
    """paired_outcomes of two records' decoded per-image results."""
    if pa is None or pb is None:
        return None
    common, ia, ib = np.intersect1d(pa["idx"], pb["idx"], assume_unique=True, return_indices=True)
    if len(common) == 0:
        return None
    # a robust fraction over several conditions is a mean of many outcomes, not one 0/1 outcome per trial
    if pa[which[0]] is None or pb[which[1]] is None:  # a worst case over draws the record did not keep
        return None
    units = [d["trials"] * (d["conditions"] if w in ("robust", "worst") else 1)
             for d, w in ((pa, which[0]), (pb, which[1]))]
    return pa[which[0]][ia], pb[which[1]][ib], max(units)


def shown_pair(a: dict, b: dict, which: tuple[str, str] = ("robust", "robust")) -> tuple[float, float, str]:
    """The two accuracies (%) a message should set side by side for the test compare_records makes: each record's
    own where both cover the same images, else theirs on the images both evaluated (SPSA's subset against PGD's
    full set: the full-set figures can show a gap of another size, even sign, than the one tested), with
    the words that say so."""
    fields = [_FIELD.get(w, f"{w}_acc") for w in which]
    own = float(a[fields[0]]), float(b[fields[1]])
    pa, pb = decode_per_image(a.get("per_image")), decode_per_image(b.get("per_image"))
    pair = _paired(pa, pb, which)
    if (pair is None or len(pair[0]) < 2  # compare_records' unpaired test of the whole sets
            or {len(pa["idx"]), len(pb["idx"])} == {len(pair[0])}):
        return own[0], own[1], ""  # both on the same images
    return 100.0 * float(pair[0].mean()), 100.0 * float(pair[1].mean()), f" on the {len(pair[0])} images both evaluated"


def paired_test(xa: np.ndarray, xb: np.ndarray, trials: int = 1) -> Comparison:
    """Paired test of per-image outcomes (fractions in [0,1]): exact McNemar for single-trial 0/1 outcomes,
    otherwise a z test on the mean per-image difference."""
    d = (xa - xb).astype(float)
    n = len(d)
    diff = 100.0 * float(d.mean())
    se = 100.0 * float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else float("inf")
    binary = trials == 1 and np.isin(xa, (0, 1)).all() and np.isin(xb, (0, 1)).all()
    if binary:
        from scipy.stats import binomtest

        up, down = int(((xa == 1) & (xb == 0)).sum()), int(((xa == 0) & (xb == 1)).sum())
        p = 1.0 if up + down == 0 else float(binomtest(up, up + down, 0.5).pvalue)
        # a discordant-pair SE that is positive whenever there is any discordance (McNemar's normal form)
        se = 100.0 * math.sqrt(up + down - (up - down) ** 2 / n) / n if up + down else 0.0
    else:
        from scipy.stats import norm

        p = float(2 * norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
    return Comparison(diff, se, p, True, n)


def unpaired_test(acc_a: float, n_a: int, std_a: float, t_a: int,
                  acc_b: float, n_b: int, std_b: float, t_b: int) -> Comparison:
    """z test of two accuracies on different images (binomial errors plus trial spreads)."""
    from scipy.stats import norm

    se = math.hypot(standard_error(acc_a, n_a, std_a, t_a), standard_error(acc_b, n_b, std_b, t_b))
    diff = acc_a - acc_b
    return Comparison(diff, se, float(2 * norm.sf(abs(diff) / se)), False, min(n_a, n_b))


def _get(rec, key, default=0.0):
    v = rec.get(key, default) if isinstance(rec, dict) else getattr(rec, key, default)
    try:
        return default if v is None or (isinstance(v, float) and math.isnan(v)) else v
    except TypeError:
        return v


_FIELD = {"clean": "clean_acc", "robust": "robust_acc", "worst": "robust_acc_worst"}


ECE_BINS = 15
BOOTSTRAP = 2000  # resamples of the paired bootstrap of ECE differences


def ece_from(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """ECE (percent) with `bins` equal-width confidence bins, of each row of (resamples x images) arrays (or of
    one 1-D pair): sum over bins of |mean correct - mean confidence| weighted by the bin's share."""
    conf, ok = np.atleast_2d(confidence), np.atleast_2d(correct)
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    total = np.zeros(conf.shape[0])
    for b in range(bins):
        m = which == b
        count = m.sum(1)
        gap = np.abs((ok * m).sum(1) - (conf * m).sum(1))  # count x |acc - conf| of the bin
        total += np.where(count > 0, gap, 0.0)
    out = 100.0 * total / conf.shape[1]
    return out if np.ndim(confidence) > 1 else out[0]


def ece_p(rec: dict, threshold: float, seed: int = 0,
          decoded: dict | None = None) -> tuple[float, float, bool, float, float] | None:
    """(ECE, two-sided p of "ECE differs from `threshold`", whether the evidence says above, and the 95 %
    interval's low and high) from one bootstrap of the record's images (percent; over several trials of a
    randomised predictor, the mean of the trials' ECEs, as the record's value); None without the per-image
    evidence (ece_trials). The interval is the estimate ± 1.96 bootstrap standard deviations and the p a z test
    on that standard deviation, as the paired test of two ECEs (_ece_difference): the resampled ECEs sit above
    the estimate (ECE is biased upwards), so their percentiles can leave the estimate outside its own interval.
    `decoded`: the record's per-image results where the caller has decoded them already."""
    boot = _ece_bootstrap(rec, seed, decoded)
    if boot is None:
        return None
    from scipy.stats import norm

    value, se = boot
    p = float(2 * norm.sf(abs(value - threshold) / se)) if se > 0 else (1.0 if value == threshold else 0.0)
    return value, p, value > threshold, max(0.0, value - Z95 * se), value + Z95 * se


def ece_trials(rec: dict, d: dict) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """An ECE record's evidence per trial, from its decoded per-image results `d`: each trial's (confidence,
    correct) per image where it kept them (a randomised predictor's, metrics.ECE), else one pair, the mean
    confidence and the share of correct trials (the same thing for a deterministic predictor or a single trial).
    None where that pair is not the record's statistic: a randomised predictor's several trials that kept only
    their mean (its value is the mean of the trials' ECEs, far above the ECE of the mean confidence)."""
    values = d.get("values", {})
    if "confidence" not in values:
        return None
    t = int(d.get("trials", 1))
    if all(f"confidence@{k}" in values and f"correct@{k}" in values for k in range(t)) and t > 1:
        return [(values[f"confidence@{k}"], values[f"correct@{k}"]) for k in range(t)]
    stochastic = rec.get("stochastic")  # a frame row's is numpy's bool; unknown (None, NaN): not testable
    if t > 1 and (stochastic is None or bool(stochastic)):
        return None
    return [(values["confidence"], d["clean"])]


def _ece_of(trials: list[tuple[np.ndarray, np.ndarray]], rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """The mean over trials of each trial's ECE on images `rows` (an index array, or resamples x images)."""
    return np.mean([ece_from(conf[rows], ok[rows]) for conf, ok in trials], axis=0)


_ECE_CACHE: dict[tuple, tuple[float, float] | None] = {}  # a stored record's bootstrap, by its identity


def _ece_bootstrap(rec: dict, seed: int, decoded: dict | None = None) -> tuple[float, float] | None:
    """A record's ECE and its standard error from BOOTSTRAP resamples of its images (None: ece_trials); a stored
    record's (eval_hash and timestamp) computed once per process, as every table, claim and plot shows it."""
    key = (rec.get("eval_hash"), rec.get("timestamp"), str(rec.get("stochastic")), hash(repr(rec.get("per_image"))),
           seed)
    if key[0] is None or key[1] is None:
        return _ece_bootstrap_of(rec, seed, decoded)
    if key not in _ECE_CACHE:
        if len(_ECE_CACHE) >= 4096:  # bounded: a long-lived process reading many stores
            _ECE_CACHE.clear()
        _ECE_CACHE[key] = _ece_bootstrap_of(rec, seed, decoded)
    return _ECE_CACHE[key]


def _ece_bootstrap_of(rec: dict, seed: int, decoded: dict | None = None) -> tuple[float, float] | None:
    d = decoded if decoded is not None else decode_per_image(rec.get("per_image"))
    trials = ece_trials(rec, d) if d is not None else None
    if trials is None or len(trials[0][0]) < 2:
        return None
    n = len(trials[0][0])
    draw = np.random.default_rng(seed).integers(0, n, size=(BOOTSTRAP, n))
    return float(_ece_of(trials)), float(_ece_of(trials, draw).std(ddof=1))


def _ece_difference(a: dict, b: dict, ia: np.ndarray, ib: np.ndarray, seed: int) -> tuple[float, float]:
    """ECE(a) − ECE(b) on the common images and the standard error of a paired bootstrap (the same images drawn
    for both); a and b carry their trials' evidence in `ece_trials` (compare_values)."""
    ta, tb = a["ece_trials"], b["ece_trials"]
    draw = np.random.default_rng(seed).integers(0, len(ia), size=(BOOTSTRAP, len(ia)))
    boot = _ece_of(ta, ia[draw]) - _ece_of(tb, ib[draw])
    return float(_ece_of(ta, ia) - _ece_of(tb, ib)), float(boot.std(ddof=1))


def u_statistic_se(terms: np.ndarray) -> float:
    """Standard error of an order-2 U statistic from its per-item terms (each item's mean kernel against all the
    others): its variance is 4 Var(term) / n (Hoeffding), hence the factor 2."""
    return 2.0 * float(np.std(terms, ddof=1) / math.sqrt(len(terms)))


def _mean_difference(name: str, u_statistic: bool = False):
    """A metric that is the mean of per-item values: the mean paired difference and its standard error. For the
    terms of an order-2 U statistic (KID: each item's mean kernel against all others) the statistic's variance
    is 4 Var(term) / n (Hoeffding), hence the factor 2."""
    def test(a: dict, b: dict, ia: np.ndarray, ib: np.ndarray, seed: int) -> tuple[float, float]:
        d = a["values"][name][ia] - b["values"][name][ib]
        return float(d.mean()), u_statistic_se(d) if u_statistic else float(d.std(ddof=1) / math.sqrt(len(d)))
    return test


# the paired test of a metric value, by the per-item values its records keep (the first one both records have)
VALUE_TESTS = {"confidence": _ece_difference, "gamma": _mean_difference("gamma"),
               "kid_term": _mean_difference("kid_term", u_statistic=True)}


def _ece_interval(rec: dict, d: dict) -> tuple[float, float] | None:
    """ECE's 95 % interval from one bootstrap of the record's images, as ece_p gives the report."""
    out = ece_p(rec, 0.0, decoded=d)
    return None if out is None else out[3:]


def _mean_interval(name: str):
    """A metric that is the mean of per-image values (γ): mean ± 1.96 standard errors of those values."""
    def interval(rec: dict, d: dict) -> tuple[float, float] | None:
        v = d["values"][name]
        if len(v) < 2:
            return None
        half = Z95 * float(v.std(ddof=1) / math.sqrt(len(v)))
        return float(v.mean()) - half, float(v.mean()) + half
    return interval


# a metric value's 95 % interval, by the per-image values its record keeps (the twin of VALUE_TESTS), and the
# details keys of the metrics that store theirs when they are measured (KID over its samples, a VAE's PSNR)
VALUE_INTERVALS = {"confidence": _ece_interval, "gamma": _mean_interval("gamma")}
STORED_INTERVALS = ("kid_ci", "psnr_ci")


def value_interval(rec: dict) -> tuple[float, float] | None:
    """The 95 % interval of one record's metric value (ECE, local linearity γ, KID, PSNR) over its images or
    samples; None where the record keeps nothing to make one from (an older record). A row pooled over training
    seeds (seeds.pool_seeds) has the interval its pooling computed, the seeds' spread in it."""
    from varmixup_bench.results.record import field_value

    seeds = rec.get("seeds")
    if isinstance(seeds, (int, float, np.integer, np.floating)) and seeds == seeds and seeds > 1:
        lo, hi = rec.get("value_ci_low"), rec.get("value_ci_high")
        known = all(isinstance(b, (int, float, np.floating)) and b == b for b in (lo, hi))
        return (float(lo), float(hi)) if known else None  # type: ignore[arg-type]
    d = decode_per_image(rec.get("per_image"))
    for name, interval in VALUE_INTERVALS.items():
        if d is not None and name in d["values"]:
            return interval(rec, d)
    details = field_value(rec.get("details"))
    for key in STORED_INTERVALS:
        ci = details.get(key) if isinstance(details, dict) else None
        if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(b, (int, float)) and b == b for b in ci):
            return float(min(ci)), float(max(ci))
    return None


def value_interval_of_seeds(values: Sequence[float], intervals: Sequence[tuple[float, float] | None]) -> tuple[float, float] | None:
    """The interval of the mean of S seeds' metric values: the images' half-width (the root mean square of the
    seeds' own: every seed is measured on the same images, so their sampling error does not average away over
    seeds, as an accuracy's Wilson interval over the n images is not narrowed by them either) widened in quadrature
    by t(S-1)·s/√S of the seeds' spread, as interval_from_summary widens an accuracy's. None unless every seed has
    an interval."""
    if len(values) < 2 or any(ci is None for ci in intervals):
        return None
    from scipy.stats import t as student_t

    s = len(values)
    # each seed's half-width from its wider side (ECE's lower bound is cut at 0, its upper one is whole)
    halves = [max(hi - v, v - lo) for v, (lo, hi) in zip(values, intervals)]  # type: ignore[misc]
    images = math.sqrt(sum(h * h for h in halves) / s)
    spread = float(student_t.ppf(0.975, s - 1) * np.std(values, ddof=1) / math.sqrt(s))
    mean, half = float(np.mean(values)), math.hypot(images, spread)
    floor = 0.0 if all(lo >= 0 for lo, _ in intervals) else -math.inf  # type: ignore[misc]  (ECE, γ, PSNR: >= 0)
    return max(floor, mean - half), mean + half


def encode_per_sample(values: dict[str, np.ndarray], draw: str) -> dict:
    """Per-sample values of a metric over generated samples (not test images), numbered 0..n-1 by the draw that
    made them, and that draw's key: records of the same draw pair sample for sample (compare_values), records of
    different draws are not paired at all. Goes in a record's details."""
    n = len(next(iter(values.values())))
    return {"idx": _pack(np.arange(n, dtype=np.uint32)), "draw": str(draw),
            "values": {k: _pack(np.asarray(v, np.float32)) for k, v in values.items()}}


def _per_item(rec: dict) -> dict | None:
    """A record's per-item values: its per-image results, else the per-sample values in its details."""
    per_image = decode_per_image(rec.get("per_image"))
    if per_image is not None:
        return per_image
    from varmixup_bench.results.record import field_value

    details = field_value(rec.get("details"))
    blob = details.get("per_sample") if isinstance(details, dict) else None
    if not isinstance(blob, dict) or "idx" not in blob:
        return None
    return {"idx": _unpack(blob["idx"], np.uint32).astype(np.int64), "draw": blob.get("draw"),
            "values": {k: _unpack(v, np.float32).astype(np.float64) for k, v in blob["values"].items()}}


def compare_values(a: dict, b: dict, seed: int = 0) -> Comparison | None:
    """Paired test of two records' metric `value` on their common items (test images, or generated samples of
    the same draw), from per-item values (VALUE_TESTS): for ECE (per-image confidence and correctness) a paired
    bootstrap of the ECE difference, for a mean of per-image values (local linearity's gamma) a z test on the
    differences, for KID a z test with the U statistic's variance. Differences are in the metric's own units;
    None when either record lacks the per-item values (no valid test; for a randomised predictor's ECE over
    several trials, each trial's, ece_trials)."""
    pa, pb = _per_item(a), _per_item(b)
    if pa is None or pb is None or pa.get("draw") != pb.get("draw"):  # samples of different draws do not pair
        return None
    name = next((k for k in VALUE_TESTS if k in pa["values"] and k in pb["values"]), None)
    if name is None:
        return None
    if name == "confidence":  # ECE: each record's trials, as its value was measured (ece_trials)
        pa["ece_trials"], pb["ece_trials"] = ece_trials(a, pa), ece_trials(b, pb)
        if pa["ece_trials"] is None or pb["ece_trials"] is None:
            return None
    common, ia, ib = np.intersect1d(pa["idx"], pb["idx"], assume_unique=True, return_indices=True)
    n = len(common)
    if n < 2:
        return None
    from scipy.stats import norm

    diff, se = VALUE_TESTS[name](pa, pb, ia, ib, seed)
    p = float(2 * norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
    return Comparison(diff, se, p, True, n)


def compare_records(a: dict, b: dict, which: tuple[str, str] = ("robust", "robust")) -> Comparison:
    """Compare metric which[0] of record a with which[1] of record b: paired on common images when both carry
    per-image results, else unpaired; widened by the training seeds' spread when either is a mean over seeds.
    which = ("value", "value") compares metric values (compare_values; a ValueError when untestable)."""
    if which == ("value", "value"):
        cmp = compare_values(a, b)
        if cmp is None:
            raise ValueError("no per-image values in both records: a metric value cannot be tested")
        return cmp
    ka, kb = (_FIELD.get(w, f"{w}_acc") for w in which)
    by_a, by_b = by_seed(a, ka), by_seed(b, kb)
    pair = paired_outcomes(a, b, which)
    if pair is not None and len(pair[0]) > 1:
        cmp = paired_test(*pair)
    else:  # a pooled cell's `_std` is its seeds' spread, which the seed term below carries
        missing = [k for rec, k in ((a, ka), (b, kb)) if _get(rec, k, None) is None]
        if missing:  # no accuracy to test (a pooled field some seed lacked): no evidence, never a made-up 0 %
            return Comparison(math.nan, math.nan, math.nan, False, 0)
        cmp = unpaired_test(float(_get(a, ka)), int(_get(a, "n_examples", 1)),
                            0.0 if by_a else float(_get(a, f"{ka}_std")), int(_get(a, "trials", 1)),
                            float(_get(b, kb)), int(_get(b, "n_examples", 1)),
                            0.0 if by_b else float(_get(b, f"{kb}_std")), int(_get(b, "trials", 1)))
    seeds = seed_spread(by_a, by_b)
    return cmp if seeds is None else widen_by_seeds(cmp, *seeds)


# ---- training seeds: a mean over models is compared with the models' spread, not only the images' ----

def by_seed(rec: dict, field: str) -> dict[str, float] | None:
    """{training seed: value} of a cell pooled over several seeds (bench/seeds.py writes `<field>_by_seed`), or
    None for a single model."""
    v = rec.get(f"{field}_by_seed") if isinstance(rec, dict) else None
    if isinstance(v, str):
        import json

        v = json.loads(v)
    return {str(k): float(x) for k, x in v.items()} if isinstance(v, dict) and len(v) > 1 else None


def seed_spread(by_a: dict[str, float] | None, by_b: dict[str, float] | None) -> tuple[float, int] | None:
    """The training seeds' share of the error of a − b, as (standard error in points, degrees of freedom), when
    either cell is a mean over seeds. Paired by seed where both hold the same seeds (the spread of the per-seed
    differences: a seed effect the two defenses share cancels), else the sum of each mean's own seed variance
    (a single-seed cell contributes none: one model has no spread to measure). None for two single models.

    Why: the images are the same for every seed, so a per-image paired test of two seed means sees only the
    image sampling; where seeds move a randomised rule by several points, that test would call a one-point gap
    between two seed means significant although another three seeds could reverse it."""
    if by_a is None and by_b is None:
        return None
    if by_a is not None and by_b is not None and by_a.keys() == by_b.keys():
        d = np.array([by_a[k] - by_b[k] for k in sorted(by_a)])
        return float(d.std(ddof=1) / math.sqrt(len(d))), len(d) - 1
    parts = [(float(np.var(list(s.values()), ddof=1)) / len(s), len(s) - 1) for s in (by_a, by_b) if s is not None]
    return math.sqrt(sum(v for v, _ in parts)), min(df for _, df in parts)


def widen_by_seeds(cmp: Comparison, se_seeds: float, df: int) -> Comparison:
    """cmp with the seed term added: SE = hypot(SE_images, SE_seeds), and p read from a t distribution with the
    seeds' `df` (S − 1 for S seeds). With no image noise this is the paired t test over the seeds at every level.
    Where the images' term dominates it is conservative, and must be: the seeds' true spread is estimated with
    `df` degrees of freedom, and a test valid whatever that spread is takes the heaviest tail, t(df). A normal p
    on a widened SE, or a Welch–Satterthwaite df, rejected 13–27 times its rate at a 0.05 % Holm level with three
    seeds (a simulation of 2026-12-01; tests/test_seeds.py checks this one's level at 5 % down to 0.05 %)."""
    if not se_seeds >= 0:  # NaN: no seed term to add
        return cmp
    # seeds that happen to agree exactly (spread 0) still have a spread estimated with `df` degrees of freedom:
    # t(df) as for any other, not the images' z (which had made a vanishing spread the most decisive case)
    se = math.hypot(cmp.se, se_seeds)
    unread = Comparison(cmp.diff, se, 0.0, cmp.paired, cmp.n, float(df))
    return Comparison(cmp.diff, se, unread.p_against(0.0), cmp.paired, cmp.n, float(df))


def comparison_of_seeds(per_seed: Sequence[Comparison]) -> Comparison:
    """The test of two seed means from each seed's own paired comparison (a metric's value, whose pooled record
    keeps no per-image values): the mean difference, the images' standard error the root mean square of the
    seeds' (the same images in every seed), widened by the spread of the per-seed differences with S − 1 degrees
    of freedom (widen_by_seeds), as a pooled accuracy's test is."""
    d = np.array([c.diff for c in per_seed], dtype=float)
    se = math.sqrt(float(np.mean([c.se ** 2 for c in per_seed])))
    images = Comparison(float(d.mean()), se, math.nan, all(c.paired for c in per_seed), min(c.n for c in per_seed))
    if len(d) < 2:
        return Comparison(images.diff, se, images.p_against(0.0), images.paired, images.n)
    return widen_by_seeds(images, float(d.std(ddof=1) / math.sqrt(len(d))), len(d) - 1)


def metric_figure(x: float) -> str:
    """A metric's value, bound or difference: two decimals where that keeps three significant digits (ECE in
    percent), else three significant digits (a local-linearity γ or a KID of 0.004 is not "0.00")."""
    return f"{x:.2f}" if abs(x) >= 1 or x == 0 else f"{x:.3g}"


def metric_text(value: float, unit: str, ci: tuple[float, float] | None) -> str:
    """'30.83 % [28.85, 32.81]': a metric's value in its unit, its 95 % interval where there is one."""
    text = f"{metric_figure(value)} {unit}".strip()
    return text + (f" [{metric_figure(ci[0])}, {metric_figure(ci[1])}]" if ci else "")


def format_interval(mean: float, lo: float, hi: float, digits: int = 1) -> str:
    """'28.0 [24.2, 32.1]'."""
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


# ---- many comparisons in one command: the family-wise error rate ----

FAMILY_ALPHA = 0.05  # the family-wise error rate of one command's comparisons (diagnose, report, best marks)


def family_share(families: int) -> float:
    """The level of each of the `families` families of comparisons one command decides (a page's bold marks, its
    diagnose findings, its claims), so that together they err at most FAMILY_ALPHA: Bonferroni across the
    families, Holm–Bonferroni within each."""
    if families < 1:
        raise ValueError(f"a command decides at least one family of comparisons, got {families}")
    return FAMILY_ALPHA / families


def p_figure(p: float) -> str:
    """A p value as the pages write it: '5.5e-23'; one that underflowed to 0 in double precision is '< 1e-300'
    (a p is never 0)."""
    return "< 1e-300" if p == 0 else f"{p:.2g}"


def p_text(p: float) -> str:
    """'p = 5.5e-23', or 'p < 1e-300' where it underflowed (p_figure)."""
    figure = p_figure(p)
    return f"p {figure}" if figure.startswith("<") else f"p = {figure}"


def percent(alpha: float) -> str:
    """A level as the pages write it: '1.25 %'."""
    return f"{alpha * 100:.3g} %"


def levels_note(alpha: float) -> str:
    """The sentence a view prints under its tables: at what family-wise level its marks were decided."""
    k = max(int(round(FAMILY_ALPHA / alpha)), 1)
    shared = (f" (this command's {percent(FAMILY_ALPHA)} shared equally by the {k} families of comparisons it "
              "decides)" if k > 1 else "")
    return f"Each family of comparisons here is decided at a family-wise {percent(alpha)}{shared}."


def one_sided_p(cmp: Comparison) -> float:
    """p value of "a is above b" (half the two-sided p in that direction, else 1 - half)."""
    half = cmp.p / 2.0
    return half if cmp.diff > 0 else 1.0 - half


def holm(pvalues: Sequence[float], alpha: float = FAMILY_ALPHA) -> list[bool]:
    """Holm–Bonferroni step-down: which of the hypotheses to reject so that the chance of rejecting any true
    one is at most `alpha` (family-wise), whatever their dependence. Sorted ascending, the k-th smallest p
    (k from 0) is rejected while p <= alpha / (m - k); the first that fails stops the rejections."""
    m = len(pvalues)
    reject = [False] * m
    # a NaN p sorts last (a plain sort of floats with NaN is no order at all) and never rejects, but still
    # counts in m: a comparison that could not be made is not dropped from the family
    order = sorted(range(m), key=lambda j: (math.isnan(pvalues[j]), pvalues[j]))
    for k, i in enumerate(order):
        p = pvalues[i]
        if not (p <= alpha / (m - k)):
            break
        reject[i] = True
    return reject
