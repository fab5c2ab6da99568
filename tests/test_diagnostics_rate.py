"""The false-alarm rate of one `bench diagnose` call is bounded, and real symptoms still fire: measured over 40
seeded repetitions whose per-image outcomes are drawn from a real randomised predictor (Mixup + MI on digits).

Null set: every record of one repetition is an evaluation of the same randomised predictor (flat ε curves, PGD-50
equal to PGD-10, adaptive equal to oblivious, SPSA equal to the rest), so every check's hypothesis is true and any
finding is a false alarm. Each record's per-image outcome is what a real evaluation stores: the fraction of
`DRAWS` independent draws of the predictor that classified the image correctly, drawn from that image's own
probability of being classified correctly (measured on the real predictor with 40 draws per image)."""
from __future__ import annotations

import numpy as np
import pytest

from varmixup_bench.views.diagnostics import comparisons_made, diagnose
from varmixup_bench.views.leaderboard import leaderboard_frame
from varmixup_bench.results.stats import encode_per_image

REPS, N, DRAWS = 40, 200, 10
E = 8 / 255
NULL_CELLS = [  # (attack, threat model, eps)
    ("pgd10", "oblivious", 2 / 255), ("pgd10", "oblivious", 4 / 255), ("pgd10", "oblivious", E),
    ("pgd10", "oblivious", 16 / 255), ("pgd50", "oblivious", E), ("adaptive-pgd10", "adaptive", E),
    ("adaptive-apgd", "adaptive", E), ("spsa", "oblivious", E),
    ("adaptive-pgd(eot=8,restarts=1,steps=10)", "adaptive", E), ("adaptive-pgd(eot=8,restarts=1,steps=20)", "adaptive", E),
]
# the symptom each check looks for, planted into one cell: (cell, shift of every image's probability of being
# classified correctly). 12 points on 200 images: a gap the harness must not miss.
PLANTS = {
    "accuracy-rises-with-eps": (("pgd10", "oblivious", 16 / 255), +0.12),
    "pgd50-above-pgd10": (("pgd50", "oblivious", E), +0.12),
    "adaptive-above-oblivious": (("adaptive-pgd10", "adaptive", E), +0.12),
    "oblivious-overstates": (("adaptive-apgd", "adaptive", E), -0.12),
    "blackbox-beats-whitebox": (("spsa", "oblivious", E), -0.12),
    "not-converged": (("adaptive-pgd(eot=8,restarts=1,steps=20)", "adaptive", E), -0.12),
}


@pytest.fixture(scope="module")
def p_correct(mixup_mi, digits):
    """Each test image's probability that one draw of Mixup + MI classifies it correctly under PGD-10 at an ε that
    leaves it near 50 % (a mid-range accuracy, where a proportion's noise is largest)."""
    import varmixup_bench as bench
    from varmixup_bench.training.data import stratified_subset as subset

    sub = subset(digits.test, N, 0, "test")
    rates = [bench.evaluate(mixup_mi, "pgd10", eps=0.12, split=sub, seed=s, record=False, show_progress=False)
             for s in range(4)]
    from varmixup_bench.results.stats import decode_per_image

    p = np.mean([decode_per_image(r["per_image"])["robust"] for r in rates], axis=0)
    assert 0.3 < p.mean() < 0.8 and p.std() > 0.1  # heterogeneous images, mid-range accuracy
    return p


def _record(rng, p, attack, threat, eps, stamp):
    robust = rng.binomial(DRAWS, np.clip(p, 0, 1))
    worst = (robust == DRAWS).astype(np.uint8)
    clean = rng.binomial(1, 0.95, len(p))
    return {"dataset": "digits", "defense": "mixup+mi", "attack": attack, "threat_model": threat, "eps": eps,
            "norm": "Linf", "robust_acc": 100 * robust.mean() / DRAWS, "robust_acc_std": 0.0,
            "clean_acc": 100 * clean.mean(), "clean_acc_std": 0.0, "trials": 1, "n_examples": len(p), "seed": 0,
            "stochastic": True, "config_hash": "m", "eval_hash": f"{attack}{eps}", "timestamp": stamp,
            "per_image": encode_per_image(np.arange(len(p)), clean, robust, 1, DRAWS, worst),
            "attack_config": _budget(attack)}


def _budget(attack: str) -> dict:
    """A budget spec's keywords as the record's attack_config (what `bench converge` stores)."""
    if "(" not in attack:
        return {}
    return {k: int(v) for k, v in (kv.split("=") for kv in attack[attack.index("(") + 1:-1].split(","))}


def repetition(p: np.ndarray, rep: int, plant: tuple | None = None) -> list[dict]:
    rng = np.random.default_rng(1000 + rep)
    out = []
    for i, cell in enumerate(NULL_CELLS):
        shift = plant[1] if plant is not None and plant[0] == cell else 0.0
        out.append(_record(rng, p + shift, *cell, f"2026-01-01T00:00:{i:02d}"))
    return out


def test_diagnose_flags_at_most_5_percent_of_null_repetitions(p_correct):
    fired = [bool(diagnose(leaderboard_frame(repetition(p_correct, r)))) for r in range(REPS)]
    assert comparisons_made(leaderboard_frame(repetition(p_correct, 0))) >= 10  # a family, not one comparison
    assert sum(fired) <= 0.05 * REPS, f"{sum(fired)} of {REPS} null repetitions flagged something"


@pytest.mark.parametrize("check", sorted(PLANTS))
def test_each_planted_symptom_fires_in_at_least_95_percent(p_correct, check):
    hits = sum(check in {f.check for f in diagnose(leaderboard_frame(repetition(p_correct, r, PLANTS[check])))}
               for r in range(REPS))
    assert hits >= 0.95 * REPS, f"{check} fired in {hits} of {REPS}"
