"""A campaign plan's claims decided on its records: each claim a paired test of two cells
(results.stats.compare_records), all of a page's claims decided together with Holm–Bonferroni at the page's share of
the family-wise level (page_families); a claim on seed means decided in each seed (seed_test), the t(S − 1) test of
its mean shown beside. campaigns.compose writes the table (claims_section) into the page."""
from __future__ import annotations

import math
from typing import Any

from varmixup_bench.campaigns.plan import Plan
from varmixup_bench.core.errors import BenchError

METRIC_FIELD = {"clean": "clean_acc", "robust": "robust_acc", "worst": "robust_acc_worst", "value": "value"}
VERDICTS = ("holds", "does not hold", "within noise")


def _interval(rec: dict, metric: str) -> str:
    from varmixup_bench.results.stats import format_interval, metric_text, value_interval

    from varmixup_bench.views.leaderboard import METRIC_UNITS

    f = METRIC_FIELD[metric]
    if metric == "value":  # a metric's value in its unit, its 95 % interval where the record can give one
        unit = METRIC_UNITS.get(rec.get("metric") or "", rec.get("metric") or "")
        return metric_text(float(rec[f]), unit, value_interval(rec))
    return format_interval(float(rec[f]), float(rec[f"{f}_ci_low"]), float(rec[f"{f}_ci_high"]))


def claim_rows(plan: Plan, cell_record, alpha: float | None = None, record_of=None) -> list[dict[str, Any]]:
    """Each claim with its two records, its paired test and its verdict; the claims whose cells are both recorded
    are decided together (Holm–Bonferroni over the two-sided p values at family-wise `alpha`, FAMILY_ALPHA when
    the claims are the only comparisons; a page shares it with its other families: page_families). With
    `record_of` ((pass name, cell) -> record), a claim with a side pooled over seeds is decided seed by seed
    (seed_test); its pooled comparison stays on the row, its p as `recipe_p`."""
    from varmixup_bench.results.stats import FAMILY_ALPHA, compare_records, comparison_of_seeds, holm

    rows = []
    for claim in plan.claims:
        try:
            a, b = cell_record(claim.better), cell_record(claim.worse)
        except BenchError as exc:  # e.g. a side's seeds that do not pool: this claim says so, the page is written
            rows.append({"claim": claim, "better": None, "worse": None, "cmp": None, "verdict": f"untestable: {exc}"})
            continue
        row: dict[str, Any] = {"claim": claim, "better": a, "worse": b, "cmp": None, "verdict": None}
        if a is None or b is None:
            row["verdict"] = "cells missing"
        elif any(METRIC_FIELD[side.metric] not in rec or rec[METRIC_FIELD[side.metric]] is None
                 for side, rec in ((claim.better, a), (claim.worse, b))):
            row["verdict"] = "no such metric in the record"
        else:
            which = (claim.better.metric, claim.worse.metric)
            try:
                row["cmp"] = compare_records(a, b, which)
            except ValueError:  # no per-image values: a metric pooled over seeds, tested from its seeds' below
                row["cmp"] = None
            pairs = seed_pairs(claim, record_of) if record_of is not None else None
            try:
                per_seed = [(seed, compare_records(x, y, which)) for seed, x, y in pairs] if pairs else None
            except ValueError:  # a metric's value without per-image values in some seed
                per_seed = None
            if row["cmp"] is None and per_seed:  # a metric's seed means: their test from each seed's own
                row["cmp"] = comparison_of_seeds([c for _, c in per_seed])
            if row["cmp"] is None:
                row["verdict"] = "untestable: no per-image values"
            else:
                row["p"], row["claimed"] = claim_test(claim, row["cmp"])
                if per_seed:
                    row["recipe_p"] = row["p"]
                    row["seeds"], row["p"], row["claimed"] = seed_test(claim, per_seed, row["claimed"])
        rows.append(row)
    tested = [r for r in rows if r["cmp"] is not None]
    for row, reject in zip(tested, holm([r["p"] for r in tested], FAMILY_ALPHA if alpha is None else alpha)):
        row["verdict"] = VERDICTS[2] if not reject else VERDICTS[0] if row["claimed"] else VERDICTS[1]
    return rows


def seed_pairs(claim, record_of) -> list[tuple[str, dict, dict]] | None:
    """(seed, better's record, worse's record) for each training seed of a claim with a side pooled over seeds:
    paired by seed where both sides hold the same seeds, else each seed of the pooled side against the other
    side's single model; None for two single models, while a record is missing, or where the seeds do not pair."""
    if not (claim.better.pooled or claim.worse.pooled):
        return None
    sides = []
    for ref in (claim.better, claim.worse):
        recs = {str(cell.seed): record_of(name, cell) for name, cell in ref.cells()}
        if any(r is None for r in recs.values()):
            return None
        sides.append(recs)
    a, b = sides
    if claim.better.pooled and claim.worse.pooled:
        return [(s, a[s], b[s]) for s in a] if a.keys() == b.keys() else None
    if claim.better.pooled:
        (only,) = b.values()
        return [(s, rec, only) for s, rec in a.items()]
    (only,) = a.values()
    return [(s, only, rec) for s, rec in b.items()]


def seed_test(claim, per_seed: list[tuple[str, Any]], pooled_side: bool) -> tuple[list, float, bool]:
    """A claim on seed means decided seed by seed (an intersection–union test): ([(seed, comparison, p)], p, on
    the claimed side). It holds only where every seed's own paired test puts the difference on the claimed side,
    and does not hold only where every seed's puts it on the other, at p = the largest of the seeds' p values (a
    false verdict needs that seed's test to err, so the level holds without sharing it among the seeds); seeds
    that disagree give p = 1, within noise. Why: the verdict is about the S trained models; the t(S − 1) test of
    the pooled mean (the row's `recipe_p`), which also covers seeds not trained, needs with S = 3 a gap of tens of
    standard errors at a page's Holm levels, so it could not decide even a 35-point gap."""
    tests = [(seed, cmp, *claim_test(claim, cmp)) for seed, cmp in per_seed]
    sides = {claimed for *_, claimed in tests}
    rows = [(seed, cmp, p) for seed, cmp, p, _ in tests]
    untested = any(not (math.isfinite(cmp.diff) and p == p) for _, cmp, p, _ in tests)  # a seed without the value
    if len(sides) != 1 or untested:
        return rows, 1.0, pooled_side
    return rows, max(p for _, _, p, _ in tests), sides.pop()


def side_record(ref, record_of) -> dict | None:
    """The record a claim side compares: its cell's, or for a side pooled over seeds the seeds' records pooled
    into one (results.seeds.pool_seeds: the mean, per-image counts summed, each seed's accuracy kept so that the
    test carries the seeds' spread); None while any of them is missing."""
    recs = [record_of(name, cell) for name, cell in ref.cells()]
    if any(r is None for r in recs):
        return None
    if not ref.pooled:
        return recs[0]
    import pandas as pd

    from varmixup_bench.results.seeds import pool_seeds

    pooled = pool_seeds(pd.DataFrame(recs))
    if len(pooled) != 1:
        raise BenchError(f"claim side {ref.label()}: its seeds' records differ in more than the seed "
                         f"({len(pooled)} groups), so they have no one mean")
    return {k: v for k, v in pooled.iloc[0].to_dict().items() if not (isinstance(v, float) and v != v)}


def page_families(plan: Plan) -> int:
    """The families of comparisons a campaign page decides, which share its family-wise FAMILY_ALPHA
    (stats.family_share): the headline's bold marks, the full matrix's, the diagnose findings (one family, shown
    in both tables and in their own section) and, when the plan states any, the claims."""
    return 3 + bool(plan.claims)


def claim_test(claim, cmp) -> tuple[float, bool]:
    """(two-sided p, whether the estimate lies on the claimed side) of a claim's comparison: against 0 with the
    comparison's own test, or, for a claim with a margin (non-inferiority), the same test (z, or t where seeds'
    spread is in the error) of the difference against -margin (better/worse) or +margin (lower/higher)."""
    if not claim.margin:
        return cmp.p, (cmp.diff < 0 if claim.lower_is_better else cmp.diff > 0)
    bound = claim.margin if claim.lower_is_better else -claim.margin
    shifted = (claim.margin - cmp.diff) if claim.lower_is_better else (cmp.diff + claim.margin)
    return cmp.p_against(bound), shifted > 0


def claims_section(rows: list[dict[str, Any]], alpha: float) -> str:
    """The page's claims table (claim_rows' rows) with how it was decided, at family-wise `alpha`."""
    from varmixup_bench.results.stats import levels_note, metric_figure, p_figure, p_text, percent

    if not rows:
        return "The plan states no claims.\n"
    tested = sum(r["cmp"] is not None for r in rows)
    lines = [f"Each claim says the first cell's accuracy is above the second's (a claim written lower/higher: the "
             f"first cell's value is below the second's, e.g. a lower ECE; its difference is in the metric's units, "
             f"from a paired bootstrap of ECE, a z test on per-image values, or for KID on the per-sample terms of the "
             f"same draw of pairs). Test: paired on the same test images "
             f"where both records keep per-image outcomes (exact McNemar for single-draw 0/1 outcomes, else a z test "
             f"on the per-image differences), unpaired otherwise; the {tested} claim(s) with both cells recorded are "
             f"decided together with Holm–Bonferroni at a family-wise {percent(alpha)}: **holds** (significant in "
             f"the claimed direction), **does not hold** (significant in the opposite direction), **within noise**. "
             f"A claim with a margin m (\"within m points\") says the difference is above −m (lower/higher: "
             f"below +m) and is tested against that bound (the comparison's own test: z, or t for a mean of seeds). A side "
             f"labelled \"mean of seeds\" is the mean over those training seeds' models (its difference is the mean "
             f"of the seeds' differences), and its claim is tested in each seed: each seed's model against the other "
             f"side's model of the same seed (or its single model), paired on the images. The verdict is about these "
             f"trained models (an intersection–union test): **holds** only where every seed's test is on the claimed "
             f"side, **does not hold** only where every seed's is on the other, at p = the largest of the seeds' p "
             f"values (the SE column gives the seeds' SEs); seeds that disagree are **within noise**. Whether the "
             f"gap carries to seeds not trained is the row's \"over seeds\" p: the standard error the hypotenuse of "
             f"the images' and the seeds' (the spread of the per-seed differences), read from t with S − 1 degrees "
             f"of freedom (valid whatever the seeds' true spread; with three seeds it needs a gap of tens of SEs to "
             f"be decided at this page's levels, so it is shown, not decided).",
             "", "| # | better (or lower) | worse (or higher) | first | second | difference (points, or the metric's "
             "unit) | SE | p | test | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        c, cmp = r["claim"], r["cmp"]
        vals = [_interval(r[s], getattr(c, s).metric) if r[s] is not None and cmp is not None else "—"
                for s in ("better", "worse")]
        margin = (f" (claimed {'<' if c.lower_is_better else '>'} {c.margin if c.lower_is_better else -c.margin:+g})"
                  if c.margin else "")
        stats = ["—"] * 4
        if cmp is not None:  # a metric's difference in its units, an accuracy's in points
            num = metric_figure if c.better.metric == "value" else (lambda x: f"{x:.1f}")
            test = ("paired" if cmp.paired else "unpaired") + f", n={cmp.n}" + (
                f", t({cmp.df:g})" if math.isfinite(cmp.df) else "")
            stats = [("+" if cmp.diff >= 0 else "") + num(cmp.diff) + margin, num(cmp.se), p_figure(r["p"]), test]
            if r.get("seeds"):  # decided seed by seed: each seed's difference and SE, the pooled test beside
                per = r["seeds"]
                stats[0] += " (" + "; ".join(f"seed {s}: {'+' if c.diff >= 0 else ''}{num(c.diff)}"
                                             for s, c, _ in per) + ")"
                stats[1] = ", ".join(num(c.se) for _, c, _ in per)
                stats[3] = (("paired" if all(c.paired for _, c, _ in per) else "unpaired")
                            + f" in each of {len(per)} seeds (the largest p), n={per[0][1].n}; over seeds "
                            + (f"t({cmp.df:g})" if math.isfinite(cmp.df) else "z") + f" {p_text(r['recipe_p'])}")
        note = f" ({c.note})" if c.note else ""
        lines.append(f"| {c.number} | {c.better.label()} | {c.worse.label()} | {' | '.join(vals)} | "
                     f"{' | '.join(stats)} | **{r['verdict']}**{note} |")
    return "\n".join(lines) + f"\n\n{levels_note(alpha)}\n"

