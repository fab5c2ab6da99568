"""Claims about metric values (ECE, local linearity): per-image values in the records, paired tests of the value
(a paired bootstrap of ECE, a z test on per-image gamma), and lower/higher claims in a campaign plan."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import varmixup_bench as bench
from varmixup_bench.core.errors import BenchError
from varmixup_bench.results.stats import compare_records, compare_values, ece_from, encode_per_image


def test_ece_from_per_image_values_equals_the_attacks_ece():
    from varmixup_bench.attacks.metrics import expected_calibration_error

    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(3 * torch.randn(500, 10, generator=g), 1)
    labels = torch.randint(0, 10, (500,), generator=g)
    ece, _ = expected_calibration_error(probs, labels)
    conf, pred = probs.max(1)
    assert ece_from(conf.double().numpy(), (pred == labels).double().numpy()) == pytest.approx(ece, abs=1e-4)
    # perfectly calibrated by construction: every image correct with its confidence 1 -> ECE 0
    assert ece_from(np.ones(50), np.ones(50)) == pytest.approx(0.0)


def _record(conf, correct, idx=None, key="confidence"):
    idx = np.arange(len(conf)) if idx is None else idx
    return {"per_image": encode_per_image(idx, correct, correct, 1, values={key: conf})}


def test_paired_ece_test_is_null_on_the_same_predictor_and_sees_a_miscalibrated_one():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.3, 1.0, 1000)
    correct = (rng.random(1000) < conf).astype(int)  # calibrated
    same = compare_values(_record(conf, correct), _record(conf, correct))
    assert same.diff == 0 and same.p == 1.0 and same.paired and same.n == 1000
    over = np.clip(conf + 0.2, 0, 1)  # the same outcomes, overconfident by 0.2
    worse = compare_values(_record(conf, correct), _record(over, correct))
    assert worse.diff < -10 and worse.p < 1e-6  # first minus second: the calibrated one is lower
    # paired on the common images only, in the order of the test-set index
    shuffled = rng.permutation(1000)
    again = compare_values(_record(conf, correct), _record(over[shuffled], correct[shuffled], idx=shuffled))
    assert again.diff == pytest.approx(worse.diff)
    assert compare_values(_record(conf, correct), {"per_image": None}) is None
    with pytest.raises(ValueError, match="per-image values"):
        compare_records(_record(conf, correct), _record(conf, correct, key="gamma"), ("value", "value"))


def test_paired_gamma_test_is_a_z_test_on_per_image_differences():
    rng = np.random.default_rng(1)
    a, noise = rng.gamma(2.0, 1.0, 400), rng.normal(0, 0.5, 400)
    cmp = compare_values(_record(a, np.ones(400), key="gamma"), _record(a + 0.3 + noise, np.ones(400), key="gamma"))
    d = -(0.3 + noise)
    assert cmp.diff == pytest.approx(d.mean()) and cmp.se == pytest.approx(d.std(ddof=1) / np.sqrt(400))


def test_ece_and_linearity_records_keep_per_image_values_that_reproduce_their_value(tmp_path, digits):
    from varmixup_bench.results.stats import decode_per_image

    d = bench.train("erm", digits, workdir=tmp_path, epochs=2, show_progress=False)
    ece = bench.evaluate(d, "ece", record=False, show_progress=False)
    pi = decode_per_image(ece["per_image"])
    assert ece_from(pi["values"]["confidence"], pi["clean"]) == pytest.approx(ece["value"], abs=1e-3)
    assert 100 * pi["clean"].mean() == pytest.approx(ece["clean_acc"])
    lin = bench.evaluate(d, "linearity", eps=8 / 255, record=False, show_progress=False)
    pl = decode_per_image(lin["per_image"])
    assert pl["values"]["gamma"].mean() == pytest.approx(lin["value"], rel=1e-5)
    assert 100 * pl["clean"].mean() == pytest.approx(lin["clean_acc"])


PLAN = """
[campaign]
name = "values"
dataset = "digits"
preset = "quick"
set = { epochs = { erm = 2, mixup = 2 }, test_subset = 120 }

[[pass]]
name = "main"
defenses = ["erm", "mixup"]
attacks = ["clean", "ece"]
"""


def test_lower_higher_claims_compare_values_and_are_checked_when_the_plan_loads(tmp_path):
    from varmixup_bench.campaigns.claims import claim_rows
    from varmixup_bench.campaigns.engine import run_campaign
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.results.store import ResultStore

    path = tmp_path / "p.toml"
    bad = [('better = { defense = "erm", attack = "ece" }\nworse = { defense = "mixup", attack = "ece" }',
            "say which is lower"),
           ('lower = { defense = "erm", attack = "ece" }\nhigher = { defense = "mixup", attack = "clean", '
            'metric = "clean" }', "compared with a metric value only"),
           ('lower = { defense = "erm", attack = "clean", metric = "value" }\nhigher = { defense = "mixup", '
            'attack = "ece" }', "needs a metric evaluation"),
           ('lower = { defense = "erm", attack = "ece" }\nworse = { defense = "mixup", attack = "ece" }', "not both")]
    for claim, message in bad:
        path.write_text(PLAN + f"\n[[claim]]\n{claim}\n")
        with pytest.raises(BenchError, match=message):
            load_plan(path)
    path.write_text(PLAN + '\n[[claim]]\nlower = { defense = "erm", attack = "ece" }\n'
                           'higher = { defense = "mixup", attack = "ece" }\n'
                           '\n[[claim]]\nlower = { defense = "mixup", attack = "ece" }\n'
                           'higher = { defense = "erm", attack = "ece" }\n')
    plan = load_plan(path)
    assert [c.lower_is_better for c in plan.claims] == [True, True] and plan.claims[0].better.metric == "value"
    run_campaign(plan, tmp_path / "wd", show_progress=False)
    latest = {r["defense"]: r for r in ResultStore(tmp_path / "wd").records() if r["attack"] == "ece"}
    rows = claim_rows(plan, lambda ref: latest[ref.cell.defense])
    first, second = rows
    assert first["cmp"].diff == pytest.approx(-second["cmp"].diff) and first["cmp"].p == pytest.approx(second["cmp"].p)
    verdicts = {first["verdict"], second["verdict"]}
    # one direction holds exactly when the other does not; within noise both are within noise
    assert verdicts in ({"holds", "does not hold"}, {"within noise"})
    sign = np.sign(latest["erm"]["value"] - latest["mixup"]["value"])
    assert np.sign(first["cmp"].diff) == sign


def test_a_claim_with_a_margin_is_tested_against_the_margin_not_zero():
    """"VarERM within 6 points of ERM": a difference of -2 ± 1 holds, -9 ± 1 does not, -6.5 ± 1 is within noise;
    a lower/higher claim with a margin bounds the difference from above."""
    from varmixup_bench.campaigns.claims import claim_test
    from varmixup_bench.campaigns.plan import Claim
    from varmixup_bench.results.stats import Comparison

    def test(diff, lower=False, margin=6.0):
        return claim_test(Claim(1, None, None, margin=margin, lower_is_better=lower),
                          Comparison(diff, 1.0, 0.5, True, 1000))

    p, claimed = test(-2.0)
    assert claimed and p == pytest.approx(2 * 3.167e-5, rel=1e-2)  # z = (−2 + 6) / 1 = 4
    p, claimed = test(-9.0)
    assert not claimed and p < 0.01
    p, claimed = test(-6.5)
    assert not claimed and p > 0.5
    assert test(5.0, lower=True, margin=6.0)[1] and not test(7.5, lower=True, margin=6.0)[1]
    # without a margin the comparison's own test decides (here its p of 0.5)
    assert test(-2.0, margin=0.0) == (0.5, False)


SEEDED = """
[campaign]
name = "seeded"
dataset = "digits"
preset = "quick"
set = { epochs = { erm = 2, mixup = 2 }, test_subset = 120 }

[[pass]]
name = "first"
defenses = ["erm", "mixup"]
attacks = ["clean"]

[[pass]]
name = "more"
defenses = ["erm", "mixup"]
attacks = ["clean"]
seeds = [1, 2]
"""


def test_a_claim_side_over_every_seed_compares_the_seeds_mean_with_their_spread(tmp_path):
    """seed = "all": each seed's cell from the first pass holding it, pooled into one record (the mean of the
    seeds; per-image counts summed), and the test widened by the seeds' spread; a cell of one seed is refused."""
    from varmixup_bench.campaigns.claims import claim_rows, side_record
    from varmixup_bench.campaigns.engine import run_campaign
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.results.store import ResultStore

    path = tmp_path / "p.toml"
    path.write_text(SEEDED.replace("seeds = [1, 2]", "seeds = [1]").replace('attacks = ["clean"]\nseeds',
                                                                             'attacks = ["ece"]\nseeds')
                    + '\n[[claim]]\nbetter = { defense = "erm", attack = "clean", seed = "all" }\n'
                      'worse = { defense = "mixup", attack = "clean" }\n')
    with pytest.raises(BenchError, match='seed = "all" needs .* for seed 0 only'):
        load_plan(path)
    refused = {  # seeds evaluated differently have no one mean
        '\n[[claim]]\nbetter = { defense = "erm", attack = "clean", seed = "all" }\n'
        'worse = { defense = "mixup", attack = "clean" }\n': r"seed 1 \(pass more\) and seed 0 \(pass first\) "
                                                           r"are evaluated differently \(test_subset\)"}
    for claim, message in refused.items():
        text = SEEDED.replace('attacks = ["clean"]\n', 'attacks = ["clean", "ece"]\n')
        if "test_subset" in message:
            text = text.replace("seeds = [1, 2]", "seeds = [1, 2]\nset = { test_subset = 60 }")
        path.write_text(text + claim)
        with pytest.raises(BenchError, match=message):
            load_plan(path)
    path.write_text(SEEDED.replace('attacks = ["clean"]\n', 'attacks = ["clean", "ece"]\n')
                    + '\n[[claim]]\nbetter = { defense = "erm", attack = "clean", seed = "all" }\n'
                      'worse = { defense = "mixup", attack = "clean", seed = "all" }\n'
                      '\n[[claim]]\nbetter = { defense = "erm", attack = "clean" }\n'
                      'worse = { defense = "mixup", attack = "clean" }\n'
                      '\n[[claim]]\nlower = { defense = "erm", attack = "ece", seed = "all" }\n'
                      'higher = { defense = "mixup", attack = "ece", seed = "all" }\n')
    plan = load_plan(path)
    pooled, single, calibration = plan.claims
    assert [(name, c.seed) for name, c in pooled.better.cells()] == [("first", 0), ("more", 1), ("more", 2)]
    assert "mean of seeds 0, 1, 2, pass first, more" in pooled.better.label()
    assert single.better.cells() == (("first", single.better.cell),) and single.better.cell.seed == 0
    run_campaign(plan, tmp_path / "wd", show_progress=False)
    recs = {(r["defense"], r["seed"]): r for r in ResultStore(tmp_path / "wd").records() if r["attack"] == "clean"}
    eces = {(r["defense"], r["seed"]): r for r in ResultStore(tmp_path / "wd").records() if r["attack"] == "ece"}
    side = side_record(pooled.better, lambda name, cell: recs.get((cell.defense, cell.seed)))
    assert side["seeds"] == 3
    assert side["clean_acc"] == pytest.approx(np.mean([recs[("erm", s)]["clean_acc"] for s in range(3)]))
    rows = claim_rows(plan, lambda ref: side_record(ref, lambda name, cell: recs.get((cell.defense, cell.seed))))
    other = side_record(pooled.worse, lambda name, cell: recs.get((cell.defense, cell.seed)))
    assert rows[0]["cmp"].diff == pytest.approx(side["clean_acc"] - other["clean_acc"])
    # the same pooled per-image outcomes without the seeds' spread: the claim's error is the wider one
    bare = compare_records({k: v for k, v in side.items() if not k.endswith("_by_seed")},
                           {k: v for k, v in other.items() if not k.endswith("_by_seed")}, ("clean", "clean"))
    assert rows[0]["cmp"].se > bare.se
    # read from t with the seeds' 2 degrees of freedom, and the page's row says so (the single-seed claim: z)
    assert (rows[0]["cmp"].df, rows[1]["cmp"].df) == (2.0, math.inf)
    from varmixup_bench.campaigns.claims import claims_section

    table = [line for line in claims_section(rows, 0.05).splitlines() if line.startswith("| 1 |")
             or line.startswith("| 2 |")]
    assert ", n=120, t(2) |" in table[0] and ", n=120 |" in table[1], table
    assert side_record(pooled.better, lambda name, cell: None if cell.seed == 2 else recs[(cell.defense, cell.seed)]) is None
    # a metric's seed means (ECE), whose pooled record keeps no per-image values: decided in each seed (each seed's
    # paired bootstrap), and its "over seeds" test from those seeds' own, widened by their spread; it had been
    # refused when the plan loaded
    from varmixup_bench.results.stats import compare_values, comparison_of_seeds

    def record_of(name, cell):
        return (eces if cell.attack == "ece" else recs).get((cell.defense, cell.seed))

    rows = claim_rows(plan, lambda ref: side_record(ref, record_of), record_of=record_of)
    per_seed = [compare_values(eces[("erm", s)], eces[("mixup", s)]) for s in range(3)]
    row = rows[2]
    assert row["verdict"] in ("holds", "does not hold", "within noise")
    assert [c.diff for _, c, _ in row["seeds"]] == pytest.approx([c.diff for c in per_seed])
    want = comparison_of_seeds(per_seed)
    assert (row["cmp"].diff, row["cmp"].se, row["cmp"].df) == pytest.approx((want.diff, want.se, 2.0))
    assert want.diff == pytest.approx(np.mean([eces[("erm", s)]["value"] - eces[("mixup", s)]["value"]
                                               for s in range(3)]), abs=1e-6)
    assert want.se > math.sqrt(np.mean([c.se ** 2 for c in per_seed]))  # the seeds' spread is in it


def test_a_margin_claim_on_seed_means_reads_its_p_from_the_same_t():
    """A non-inferiority claim ("within 6 points") on a mean of seeds tests diff + 6 against 0 with the
    comparison's own distribution: t with the seeds' df, not a z on the same SE (too small a p at 2 df)."""
    from types import SimpleNamespace

    from scipy.stats import norm, t as student_t

    from varmixup_bench.campaigns.claims import claim_test
    from varmixup_bench.results.stats import Comparison

    claim = SimpleNamespace(margin=6.0, lower_is_better=False)
    p, above = claim_test(claim, Comparison(-2.0, 1.0, 0.0, True, 1000, 2.0))
    assert above and p == pytest.approx(2 * student_t.sf(4.0, 2)) and p > 2 * norm.sf(4.0) * 100
    lower = SimpleNamespace(margin=0.5, lower_is_better=True)  # "ECE at most 0.5 above": diff < +0.5
    p, below = claim_test(lower, Comparison(0.1, 0.1, 0.0, True, 1000))
    assert below and p == pytest.approx(2 * norm.sf(4.0))


def test_one_commands_families_of_comparisons_share_its_five_percent():
    """Bonferroni across a command's families (bold marks, ⚠ findings, claims), Holm within each: a claim at
    p = 0.043 holds alone (family-wise 5 %) and is within noise on a page of four families (1.25 % each)."""
    from types import SimpleNamespace

    from varmixup_bench.campaigns.claims import claim_rows, page_families
    from varmixup_bench.results.stats import family_share, levels_note

    assert family_share(1) == 0.05 and family_share(4) == pytest.approx(0.0125)
    with pytest.raises(ValueError, match="at least one family"):
        family_share(0)
    assert levels_note(0.05) == "Each family of comparisons here is decided at a family-wise 5 %."
    assert "2.5 % (this command's 5 % shared equally by the 2 families" in levels_note(family_share(2))

    def rec(acc):
        return {"clean_acc": acc, "clean_acc_std": 0.0, "n_examples": 1000, "trials": 1, "robust_acc": acc}

    side = SimpleNamespace(metric="clean")
    claim = SimpleNamespace(better=side, worse=side, margin=0.0, lower_is_better=False)
    plan = SimpleNamespace(claims=[claim])
    records = iter([rec(50.0), rec(45.5)] * 2)
    alone, = claim_rows(plan, lambda ref: next(records))
    assert 0.0125 < alone["cmp"].p < 0.05 and alone["verdict"] == "holds"
    on_page, = claim_rows(plan, lambda ref: next(records), family_share(page_families(plan)))
    assert page_families(plan) == 4 and on_page["verdict"] == "within noise"


def _seed_record(defense: str, seed: int, correct: np.ndarray) -> dict:
    n = len(correct)
    return {"dataset": "d", "defense": defense, "attack": "pgd10", "threat_model": "white-box", "norm": "Linf",
            "eps": 8 / 255, "step": 2 / 255, "clean_acc": 90.0, "robust_acc": 100.0 * correct.mean(), "trials": 1,
            "n_examples": n, "seed": seed, "preset": "p", "config_hash": f"{defense}{seed}",
            "timestamp": f"2026-01-01T00:00:0{seed}", "attack_config": {"eps": 8 / 255, "steps": 10},
            "train_config": {"epochs": 5}, "per_image": encode_per_image(np.arange(n), np.ones(n), correct, 1)}


def _pooled_claim(seeds=(0, 1, 2)):
    from types import SimpleNamespace

    def side(defense):
        pooled = tuple(("p", SimpleNamespace(defense=defense, seed=s)) for s in seeds)
        return SimpleNamespace(metric="robust", pooled=pooled, cells=lambda: pooled, label=lambda: defense)

    return SimpleNamespace(number=1, better=side("varmi"), worse=side("at"), note="", lower_is_better=False,
                           margin=0.0)


def test_a_claim_on_seed_means_is_decided_in_each_seed_and_shows_the_pooled_t_beside():
    """Three seeds, each model of the claimed-better side ~35 points below the other's on the same 1,000 images:
    every seed's paired test says so, so the claim "does not hold" at p = the largest of the three seeds' p values
    (an intersection-union test), even at a Holm level where the pooled t(2) test, also shown, cannot decide.
    Seeds that disagree are within noise whatever their mean."""
    from types import SimpleNamespace

    from varmixup_bench.campaigns.claims import claim_rows, claims_section, side_record

    rng = np.random.default_rng(0)
    n, level = 1000, 0.0125 / 27  # the first Holm level of a page's 27 claims
    recs = {}
    for s, (pa, pb) in enumerate(((0.03, 0.38), (0.04, 0.37), (0.025, 0.40))):
        recs[("varmi", s)] = _seed_record("varmi", s, (rng.random(n) < pa).astype(np.uint8))
        recs[("at", s)] = _seed_record("at", s, (rng.random(n) < pb).astype(np.uint8))
    claim = _pooled_claim()
    record_of = lambda name, cell: recs.get((cell.defense, cell.seed))  # noqa: E731
    plan = SimpleNamespace(claims=[claim])
    row, = claim_rows(plan, lambda ref: side_record(ref, record_of), level, record_of)
    per_seed = [compare_records(recs[("varmi", s)], recs[("at", s)], ("robust", "robust")) for s in range(3)]
    assert row["p"] == pytest.approx(max(c.p for c in per_seed)) and row["p"] < 1e-50
    assert row["verdict"] == "does not hold"
    assert row["recipe_p"] > level  # the pooled t(2) alone would have said "within noise"
    assert row["cmp"].diff == pytest.approx(np.mean([c.diff for c in per_seed]))
    line = next(x for x in claims_section([row], level).splitlines() if x.startswith("| 1 |"))
    assert "(seed 0: " in line and "; seed 2: " in line and "in each of 3 seeds (the largest p), n=1000; over seeds t(2) p = " in line, line
    alone, = claim_rows(plan, lambda ref: side_record(ref, record_of), level)  # no per-seed records: the t(2) test
    assert alone["verdict"] == "within noise" and "recipe_p" not in alone

    recs[("varmi", 2)] = _seed_record("varmi", 2, (rng.random(n) < 0.80).astype(np.uint8))  # seed 2 reverses
    row, = claim_rows(plan, lambda ref: side_record(ref, record_of), 0.05, record_of)
    assert row["p"] == 1.0 and row["verdict"] == "within noise"


def test_a_seed_without_the_compared_value_leaves_the_claim_within_noise():
    """A per-seed comparison that is NaN (a seed's record without the field) is no evidence either way: p = 1,
    whichever order the seeds come in (max() with a NaN had depended on it)."""
    from varmixup_bench.campaigns.claims import seed_test
    from varmixup_bench.results.stats import Comparison

    claim = _pooled_claim()
    good = Comparison(-30.0, 1.5, 1e-90, True, 1000)
    missing = Comparison(math.nan, math.nan, math.nan, True, 1000)
    for per_seed in ([("0", good), ("1", missing)], [("1", missing), ("0", good)]):
        _, p, _ = seed_test(claim, per_seed, False)
        assert p == 1.0
