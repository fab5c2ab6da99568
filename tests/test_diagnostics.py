"""Each gradient-masking diagnostic fires on a record set with its symptom and stays quiet otherwise."""
from __future__ import annotations

import pandas as pd
import pytest

from bench.diagnostics import diagnose, flag_frame
from bench.leaderboard import leaderboard_frame, render


def rec(attack, eps, robust, threat="white-box", defense="erm", n=1000, std=0.0, trials=1, t="2026-01-01T00:00:00"):
    return {"dataset": "d", "defense": defense, "attack": attack, "threat_model": threat, "eps": eps, "step": 2 / 255,
            "clean_acc": 90.0, "clean_acc_std": 0.0, "robust_acc": robust, "robust_acc_std": std, "trials": trials,
            "n_examples": n, "seconds": 1.0, "seed": 0, "model": "m", "preset": "p", "device": "cpu",
            "config_hash": "h", "eval_hash": f"{attack}{eps}", "timestamp": t, "versions": {"torch": "x"}}


HEALTHY = [rec("pgd10", 2 / 255, 60), rec("pgd10", 8 / 255, 30), rec("pgd10", 0.5, 0), rec("pgd50", 8 / 255, 28),
           rec("adaptive-pgd10", 8 / 255, 29, "adaptive"), rec("spsa", 8 / 255, 33, "black-box")]

SYMPTOMS = {
    "accuracy-rises-with-eps": [rec("pgd10", 16 / 255, 45)],
    "large-eps-not-zero": [rec("pgd10", 0.5, 25)],
    "adaptive-above-oblivious": [rec("adaptive-pgd10", 8 / 255, 50, "adaptive")],
    "pgd50-above-pgd10": [rec("pgd50", 8 / 255, 40)],
    "blackbox-beats-whitebox": [rec("spsa", 8 / 255, 10, "black-box")],
}


def _frame(records):
    return leaderboard_frame(records)


def test_healthy_records_raise_nothing():
    assert diagnose(_frame(HEALTHY)) == []


@pytest.mark.parametrize("check", sorted(SYMPTOMS))
def test_each_check_fires_on_its_symptom_only(check):
    records = HEALTHY + [dict(r, timestamp="2026-02-01T00:00:00") for r in SYMPTOMS[check]]
    fired = {f.check for f in diagnose(_frame(records))}
    assert fired == {check}


def test_differences_within_noise_do_not_fire():
    noisy = [rec("pgd10", 8 / 255, 30, n=100, std=3.0, trials=10), rec("pgd50", 8 / 255, 31.5, n=100, std=3.0, trials=10)]
    assert diagnose(_frame(noisy)) == []


def test_leaderboard_flags_affected_rows():
    records = HEALTHY + [dict(SYMPTOMS["pgd50-above-pgd10"][0], timestamp="2026-02-01T00:00:00")]
    df = _frame(records)
    flagged = df[df["flags"] != ""]
    assert set(zip(flagged["attack"], flagged["eps"].round(4))) == {("pgd50", round(8 / 255, 4)), ("pgd10", round(8 / 255, 4))}
    assert "⚠ pgd50-above-pgd10" in render(df, "md")
