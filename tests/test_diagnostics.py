"""Each gradient-masking diagnostic fires on a record set with its symptom and stays quiet otherwise."""
from __future__ import annotations

import pytest

from varmixup_bench.views.diagnostics import diagnose, flag_frame
from varmixup_bench.views.leaderboard import leaderboard_frame, render


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



@pytest.mark.parametrize("attack,threat", [("pgd(steps=20)", "white-box"), ("torchattacks:PGD", "white-box"),
                                           ("adaptive-pgd(eot=8,restarts=1,steps=20)", "adaptive"),
                                           ("adaptive:torchattacks:PGD(eot=2)", "adaptive"), ("autoattack", "white-box")])
def test_a_budgeted_or_catalog_attack_is_checked_as_its_named_relatives_are(attack, threat):
    """The eps checks read every gradient attack's curve by its class, not only the named pgd10 / adaptive-pgd10:
    a budget, a catalog attack or AutoAttack that rises with eps or keeps 25 % at 0.5 fires."""
    healthy = [rec(attack, 2 / 255, 60, threat), rec(attack, 8 / 255, 30, threat), rec(attack, 0.5, 0, threat)]
    assert diagnose(_frame(healthy)) == []
    later = "2026-02-01T00:00:00"
    assert {f.check for f in diagnose(_frame(healthy + [rec(attack, 16 / 255, 45, threat, t=later)]))} == {
        "accuracy-rises-with-eps"}
    assert {f.check for f in diagnose(_frame(healthy + [rec(attack, 0.5, 25, threat, t=later)]))} == {
        "large-eps-not-zero"}


@pytest.mark.parametrize("attack", ["spsa", "torchattacks:Square", "art:HopSkipJump", "transfer:erm"])
def test_any_black_box_attack_below_every_white_box_attack_fires(attack):
    white = [rec("pgd10", 8 / 255, 30.0), rec("pgd50", 8 / 255, 29.0)]
    assert diagnose(_frame(white + [rec(attack, 8 / 255, 33.0, "black-box")])) == []
    found = diagnose(_frame(white + [rec(attack, 8 / 255, 10.0, "black-box")]))
    assert [f.check for f in found] == ["blackbox-beats-whitebox"] and "pgd50 29.0%" in found[0].message


def test_an_attack_without_a_radius_of_its_own_is_not_read_by_the_eps_checks():
    """A catalog CW or DeepFool has no eps: its minimal-norm examples are projected onto the ball, so 20 % left at
    0.5 says how often it failed, not that gradients are masked; the same record without projection fires."""
    cw = dict(rec("torchattacks:CW", 0.5, 20.0), attack_config={"class": "CW", "projected": True})
    assert diagnose(_frame(HEALTHY + [cw])) == []
    fired = diagnose(_frame(HEALTHY + [dict(cw, attack_config={"class": "CW", "projected": False})]))
    assert [f.check for f in fired] == ["large-eps-not-zero"]


def test_an_odd_stored_attack_spec_is_no_crash_and_a_transfer_from_an_unknown_source_is_still_checked():
    from varmixup_bench.views.diagnostics import attack_kind

    assert attack_kind("pgd(x={[1]:2})") == ("", False)
    assert attack_kind("transfer:a-plugin-defense-not-installed") == ("transfer", False)
    white = [rec("pgd10", 8 / 255, 30.0), rec("pgd(x={[1]:2})", 8 / 255, 50.0)]
    found = diagnose(_frame(white + [rec("transfer:a-plugin-defense-not-installed", 8 / 255, 10.0, "black-box")]))
    assert [f.check for f in found] == ["blackbox-beats-whitebox"]

def test_an_attack_that_raises_accuracy_above_clean_fires():
    """eps 0 is the curve's first point: PGD-10 at 8/255 above the same record's clean accuracy on the same images
    (VarMixup+VarMI on the regime's s4c16 VAE: 76.3 % oblivious against 71.6 % clean) is a symptom; within noise
    it is not."""
    import numpy as np

    from varmixup_bench.results.stats import encode_per_image

    def with_images(robust_correct, clean_correct):
        n = len(robust_correct)
        r = dict(rec("pgd10", 8 / 255, 100 * np.mean(robust_correct), "oblivious", defense="varmixup+varmi", n=n),
                 clean_acc=100 * np.mean(clean_correct))
        r["per_image"] = encode_per_image(np.arange(n), np.asarray(clean_correct, np.uint8),
                                          np.asarray(robust_correct, np.uint8), 1)
        return r

    clean = np.r_[np.ones(700), np.zeros(300)]
    above = clean.copy()
    above[700:760] = 1  # 60 images wrong without the attack are right with it, none the other way
    findings = diagnose(_frame([with_images(above, clean)]))
    assert [f.check for f in findings] == ["accuracy-rises-with-eps"]
    assert "76.0% at eps 0.03137 > 70.0% clean" in findings[0].message
    noise = clean.copy()
    noise[700:705], noise[0:3] = 1, 0  # 5 up, 3 down: within noise
    assert diagnose(_frame([with_images(noise, clean)])) == []


def test_differences_within_noise_do_not_fire():
    noisy = [rec("pgd10", 8 / 255, 30, n=100, std=3.0, trials=10), rec("pgd50", 8 / 255, 31.5, n=100, std=3.0, trials=10)]
    assert diagnose(_frame(noisy)) == []


def test_leaderboard_flags_affected_rows():
    records = HEALTHY + [dict(SYMPTOMS["pgd50-above-pgd10"][0], timestamp="2026-02-01T00:00:00")]
    df = _frame(records)
    flagged = df[df["flags"] != ""]
    assert set(zip(flagged["attack"], flagged["eps"].round(4))) == {("pgd50", round(8 / 255, 4)), ("pgd10", round(8 / 255, 4))}
    assert "⚠ pgd50-above-pgd10" in render(df, "md")


def test_each_training_seed_is_checked_on_its_own_evaluations():
    """Two seeds of mixup+mi at the same eps are two models, not an eps curve; one seed's oblivious cell is
    never set against another's adaptive cell (the old cifar10-cpu-full store: seed 1's PGD-10 4.8 % beside seed
    0's 1.6 % fired accuracy-rises-with-eps before the checks grouped by model)."""
    def seeded(seed, attack, robust, threat="oblivious"):
        return dict(rec(attack, 8 / 255, robust, threat, defense="mixup+mi"), seed=seed, config_hash=f"h{seed}",
                    eval_hash=f"{attack}{seed}")

    records = [seeded(0, "pgd10", 10.0), seeded(1, "pgd10", 20.0), seeded(0, "adaptive-pgd10", 2.0, "adaptive")]
    findings = diagnose(_frame(records))
    assert [(f.check, f.seed) for f in findings] == [("oblivious-overstates", "0")]  # seed 1 has no adaptive cell
    assert "10.0%" in findings[0].message and "20.0%" not in findings[0].message
    flagged = _frame(records)
    flagged = flagged[flagged["flags"] != ""]
    assert sorted(zip(flagged["seed"], flagged["attack"])) == [(0, "adaptive-pgd10"), (0, "pgd10")]
    # the same symptom inside one model still fires
    one_model = [dict(rec("pgd10", 8 / 255, 10.0), defense="mixup+mi"),
                 dict(rec("pgd10", 16 / 255, 20.0), defense="mixup+mi")]
    assert {f.check for f in diagnose(_frame(one_model))} == {"accuracy-rises-with-eps"}
    # findings read seed by seed, whatever order the models' config hashes sort in
    three = [seeded(s, a, r, t) for s in (2, 0, 1) for a, r, t in (("pgd10", 30.0, "oblivious"),
                                                                    ("adaptive-pgd10", 5.0, "adaptive"))]
    for r in three:
        r["config_hash"] = {0: "zz", 1: "aa", 2: "mm"}[r["seed"]]
    assert [f.seed for f in diagnose(_frame(three))] == ["0", "1", "2"]


def test_large_eps_check_is_l_inf_only():
    """ε = 0.5 is half the pixel range in L-inf, where ~0 % is expected; in L2 it is a small ball, and AT keeping
    36.5 % there (the old cifar10-cpu-full store) is no sign of masking."""
    l2 = dict(rec("pgd10", 0.5, 36.5, "white-box"), norm="L2")
    assert [f for f in diagnose(_frame([l2])) if f.check == "large-eps-not-zero"] == []
    linf = rec("pgd10", 0.5, 36.5, "white-box")
    assert [f.check for f in diagnose(_frame([linf]))] == ["large-eps-not-zero"]


def test_blackbox_check_sets_spsa_against_the_strongest_attack_that_sees_the_defense():
    """A randomised defense's oblivious PGD attacks F_w only, so SPSA below it is not "black-box beats white-box"
    (the old check paired SPSA with pgd10 whatever its threat model); SPSA below the adaptive attack is."""
    def mi(attack, robust, threat):
        return dict(rec(attack, 8 / 255, robust, threat, defense="varmixup+varmi"))

    base = [mi("pgd10", 41.0, "oblivious"), mi("adaptive-pgd10", 15.0, "adaptive")]
    quiet = diagnose(_frame(base + [mi("spsa", 25.0, "oblivious")]))
    assert "blackbox-beats-whitebox" not in {f.check for f in quiet}
    loud = [f for f in diagnose(_frame(base + [mi("spsa", 5.0, "oblivious")])) if f.check == "blackbox-beats-whitebox"]
    assert len(loud) == 1 and "adaptive-pgd10 15.0%" in loud[0].message
    # a deterministic model: the strongest white-box attack, not only pgd10
    det = [rec("pgd10", 8 / 255, 30.0), rec("pgd50", 8 / 255, 20.0), rec("spsa", 8 / 255, 25.0, "black-box")]
    found = [f for f in diagnose(_frame(det)) if f.check == "blackbox-beats-whitebox"]
    assert found == []  # SPSA 25 is below PGD-10 30 but above PGD-50 20: a weaker white-box attack, not a masking sign


def test_oblivious_overstates_takes_the_strongest_adaptive_attack_of_any_kind():
    """Adaptive PGD-10 within noise of the oblivious cell, adaptive APGD far below it: the check fires and names
    APGD (in the old cifar10-cpu-full store APGD is the strongest attack on every VarMI rule)."""
    def cell(attack, robust, threat):
        return dict(rec(attack, 8 / 255, robust, threat, defense="varmixup+varmi"), eval_hash=attack)

    pgd_only = [cell("pgd10", 20.0, "oblivious"), cell("adaptive-pgd10", 19.0, "adaptive")]
    assert not [f for f in diagnose(_frame(pgd_only)) if f.check == "oblivious-overstates"]
    found = [f for f in diagnose(_frame(pgd_only + [cell("adaptive-apgd", 10.0, "adaptive")]))
             if f.check == "oblivious-overstates"]
    assert len(found) == 1 and "adaptive adaptive-apgd 10.0%" in found[0].message
    assert set(found[0].rows) == {("pgd10", 8 / 255), ("adaptive-apgd", 8 / 255)}


def test_two_versions_of_an_attack_at_one_radius_are_not_a_rise_with_eps():
    """pgd10 at 8/255 twice (another step: 40 % and 50 %) and at 16/255: the curve takes one record per radius (the
    latest), so the versions' gap is not reported as accuracy rising with eps (a false alarm found in review)."""
    recs = [dict(rec("pgd10", 8 / 255, 40.0, t="2026-01-01T00:00:01"), step=2 / 255),
            dict(rec("pgd10", 8 / 255, 50.0, t="2026-01-01T00:00:02"), step=0.5 / 255, eval_hash="v2"),
            rec("pgd10", 16 / 255, 20.0, t="2026-01-01T00:00:03")]
    assert [f for f in diagnose(_frame(recs)) if f.check == "accuracy-rises-with-eps"] == []
    rising = recs + [dict(rec("pgd10", 32 / 255, 45.0, t="2026-01-01T00:00:04"))]
    (f,) = [f for f in diagnose(_frame(rising)) if f.check == "accuracy-rises-with-eps"]
    assert "45.0% at eps 0.1255 > 20.0% at 0.06275" in f.message


def test_the_report_words_a_rise_above_clean_without_crashing():
    """The check's first candidate has one row (the smallest radius against its record's clean accuracy); the
    report read a second row that is not there and died on the clearest masking sign."""
    from varmixup_bench.views.report import finding_reason

    above = dict(rec("pgd10", 2 / 255, 95.0), clean_acc=80.0)
    (f,) = [f for f in diagnose(_frame([above])) if f.check == "accuracy-rises-with-eps"]
    assert len(f.rows) == 1
    text = finding_reason(f, {("pgd10", round(2 / 255, 8)): above})
    assert text.startswith("accuracy above clean: pgd10 95.0 % at ε=2/255 vs 80.0 % clean on the same images")


def test_large_eps_judges_a_randomised_predictor_by_its_worst_case_and_skips_records_without_n():
    """A randomised predictor's mean over draws keeps a chance-level floor at any radius: at eps 0.5 its 12 %
    mean with 0 % worst case is no sign; 12 % in the worst case is. A record with no image count is skipped."""
    mean_only = dict(rec("adaptive-pgd10", 0.5, 12.0, "adaptive"), robust_acc_worst=0.0, stochastic=True, draws=10)
    assert [f for f in diagnose(_frame([mean_only])) if f.check == "large-eps-not-zero"] == []
    (f,) = [f for f in diagnose(_frame([dict(mean_only, robust_acc_worst=12.0)])) if f.check == "large-eps-not-zero"]
    assert "leaves 12.0% worst case over draws" in f.message
    old = dict(rec("pgd10", 0.5, 36.5))
    del old["n_examples"]
    assert [f for f in diagnose(_frame([old])) if f.check == "large-eps-not-zero"] == []
    # a deterministic record's robust_acc_worst is its accuracy again: judged and worded as its accuracy
    (f,) = [f for f in diagnose(_frame([dict(rec("pgd10", 0.5, 36.5), robust_acc_worst=36.5)]))
            if f.check == "large-eps-not-zero"]
    assert "leaves 36.5% accurate" in f.message and "worst case" not in f.message


def test_holm_sorts_a_nan_p_last_and_keeps_it_in_the_family():
    from varmixup_bench.results.stats import holm

    assert holm([0.001, float("nan"), 0.0001, 0.5]) == [True, False, True, False]  # the NaN used to stop the 0.0001
    assert holm([0.01, float("nan")], alpha=0.05) == [True, False]  # m = 2: 0.01 <= 0.05 / 2
    assert holm([0.03, float("nan")], alpha=0.05) == [False, False]  # 0.03 > 0.025: the NaN still counts


def test_pgd10_at_the_papers_step_is_no_point_of_the_eps_curve_nor_the_pair_of_pgd50_or_adaptive():
    """The eps/4 curve (2, 4, 8, 16/255) plus PGD-10 at 8/255 with the paper's step of 8/255, a weaker attack that
    reads 65 %, above the curve's 4/255 point: no rise with eps; PGD-50 and adaptive PGD-10 pair with the 8/255
    record of their own relative step (PGD-50 above it fires; above the paper-step record it would not). The same
    65 % at the curve's own step is a rise."""
    def at(attack, eps, robust, threat="white-box", step=None, t="2026-01-01T00:00:00"):
        return dict(rec(attack, eps, robust, threat, t=t), step=eps / 4 if step is None else step,
                    eval_hash=f"{attack}{eps}{step}")

    curve = [at("pgd10", 2 / 255, 70), at("pgd10", 4 / 255, 50), at("pgd10", 8 / 255, 30), at("pgd10", 16 / 255, 10),
             at("adaptive-pgd10", 8 / 255, 31, "adaptive")]
    paper = at("pgd10", 8 / 255, 65, step=8 / 255, t="2026-02-01T00:00:00")
    assert diagnose(_frame(curve + [paper])) == []
    found = diagnose(_frame(curve + [paper, at("pgd50", 8 / 255, 40)]))
    assert [f.check for f in found] == ["pgd50-above-pgd10"] and "pgd10 (step 2/255) 30.0%" in found[0].message
    lone = [r for r in curve if r["eps"] != 8 / 255 or r["attack"] != "pgd10"] + [dict(paper, step=2 / 255)]
    assert "accuracy-rises-with-eps" in {f.check for f in diagnose(_frame(lone))}



def test_two_steps_of_one_attack_are_two_findings_each_marked_on_its_own_cell():
    """A randomised rule's oblivious PGD-10 at eps/4 (39 %) and at the paper's step (55 %), both above the
    adaptive 20 %: two findings, each naming its step, each ⚠ beside its own cell of the wide table (one had hidden
    the other, and both cells had taken each other's marks); the long table's flags follow the step too."""
    from varmixup_bench.views.leaderboard import cell_flags, wide_frame

    def at(attack, robust, threat, step, t="2026-01-01T00:00:00"):
        return dict(rec(attack, 8 / 255, robust, threat, defense="mixup+mi", t=t), step=step, stochastic=True,
                    eval_hash=f"{attack}{step}")

    recs = [at("pgd10", 39, "oblivious", 2 / 255), at("pgd10", 55, "oblivious", 8 / 255, "2026-02-01T00:00:00"),
            at("adaptive-pgd10", 20, "adaptive", 2 / 255)]
    found = diagnose(_frame(recs))
    assert sorted(f.message.split(" > ")[0] for f in found) == ["oblivious pgd10 (step 2/255) 39.0%",
                                                               "oblivious pgd10 (step 8/255) 55.0%"]
    wide = wide_frame(_frame(recs))
    marks, notes = cell_flags(wide)
    by_col = {col: ks for (_, col), ks in marks.items()}
    k_default = next(k for k, text in notes if "(step 2/255) 39.0%" in text)
    k_paper = next(k for k, text in notes if "(step 8/255) 55.0%" in text)
    default_col = next(c for c in by_col if c.startswith("pgd10") and "2/255" in c)
    paper_col = next(c for c in by_col if c.startswith("pgd10") and "8/255)" in c.split("ε=")[1])
    assert by_col[default_col] == [k_default] and by_col[paper_col] == [k_paper]
    assert sorted(by_col["adaptive-pgd10 ε=8/255"]) == sorted([k_default, k_paper])
    flags = flag_frame(_frame(recs))
    assert list(flags.sort_values("robust_acc")["flags"]) == ["oblivious-overstates"] * 3


def test_not_converged_pairs_pgd50_with_the_pgd10_of_its_own_step_whatever_their_order():
    """PGD-50 38 % against PGD-10 at eps/4 40 % is converged; the paper-step PGD-10 (55 %, a weaker attack) is no
    point of that budget grid, even when the eps/4 record is the newer one (it had been taken as the grid's
    PGD-10 then, and `not-converged` fired at p ~ 1e-51)."""
    def at(attack, robust, step, t):
        config = {"eps": 8 / 255, "norm": "Linf", "random_start": True, "restarts": 1, "step": step,
                  "steps": 50 if attack == "pgd50" else 10}
        return dict(rec(attack, 8 / 255, robust, t=t), step=step, eval_hash=f"{attack}{step}", attack_config=config)

    recs = [at("pgd10", 55, 8 / 255, "2026-01-01T00:00:00"), at("pgd50", 38, 2 / 255, "2026-01-02T00:00:00"),
            at("pgd10", 40, 2 / 255, "2026-01-03T00:00:00")]
    assert [f.check for f in diagnose(_frame(recs))] == []


def test_a_fixed_step_curve_is_one_curve_and_an_other_step_record_is_no_point_of_it():
    """The `paper` preset's PGD-10 steps 8/255 at every radius (60, 45, 30 % at 4, 8, 16/255): one curve by its
    absolute step. An older eps/4 record at 8/255 (20 %) is no point of it (the majority rule had broken the tie
    alphabetically and made it one, and a rise to 30 % at 16/255 fired); with no other radius at its own step it
    is no curve either."""
    def at(eps, robust, step, t="2026-01-02T00:00:00"):
        return dict(rec("pgd10", eps, robust, t=t), step=step, eval_hash=f"pgd10{eps}{step}")

    fixed = [at(4 / 255, 60, 8 / 255), at(8 / 255, 45, 8 / 255), at(16 / 255, 30, 8 / 255)]
    assert diagnose(_frame(fixed + [at(8 / 255, 20, 2 / 255, "2026-01-01T00:00:00")])) == []
    rising = [at(4 / 255, 60, 8 / 255), at(8 / 255, 45, 8 / 255), at(16 / 255, 70, 8 / 255)]
    assert [f.check for f in diagnose(_frame(rising))] == ["accuracy-rises-with-eps"]
