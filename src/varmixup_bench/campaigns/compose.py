"""`bench campaign compose`: the campaign's page (markdown) and its long CSV, every number read from the records
(the cells of the plan's passes, found by their sweep keys), the trained models' metadata, the state file or the
preset, never typed:

- a header: the plan, its reading (the plan's `reading` file: prose on the results, its figures cited), the
  commands that ran it, the commit, the machine, the measured wall time (state file) and
  computation time (records' and models' seconds), the time per pass and step, the training budget per model;
- the headline table (views.headline), a reference's numbers beside ours where the plan names one (views.beside)
  and the full matrix (views.leaderboard, wide);
- the plan's claims, each a paired test of two cells (results.stats.compare_records), all of the page's claims
  decided together with Holm–Bonferroni at the page's share of results.stats.FAMILY_ALPHA (page_families: the
  claims, the diagnose findings and each table's bold marks are families that share the 5 %): "holds"
  (significant in the claimed direction), "does not hold" (significant in the opposite direction) or "within
  noise"; a claim on seed means is decided in each seed (seed_test), the t(S − 1) test of its mean shown beside;
- the gradient-masking flags (views.diagnostics.diagnose) and the extra steps' outputs (copied beside the page);
- while cells or steps are missing, a PARTIAL banner listing them.
"""
from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from varmixup_bench.campaigns.plan import Plan
from varmixup_bench.campaigns.state import CampaignState, git_commit
from varmixup_bench.campaigns.status import cell_text, pass_status, step_status
from varmixup_bench.campaigns.steps import STEPS
from varmixup_bench.core.errors import BenchError

METRIC_FIELD = {"clean": "clean_acc", "robust": "robust_acc", "worst": "robust_acc_worst", "value": "value"}
VERDICTS = ("holds", "does not hold", "within noise")


@dataclass
class Composed:
    page: Path
    csv: Path
    missing_cells: list[str] = field(default_factory=list)
    missing_steps: list[str] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing_cells and not self.missing_steps


def _hours(seconds: float) -> str:
    return f"{seconds:.1f} s ({seconds / 3600:.2f} h)"


def _time_section(state: CampaignState, n_runs: int, train_s: float, eval_s: float,
                  train_median_s: float | None = None) -> str:
    """The page's measured wall time (the state file's spans: a killed run's pass counts until its last beat, a
    pause with SIGSTOP not at all) beside its computation (the models' and records' own seconds)."""
    spans = state.spans()
    wall, bound, unbounded = state.wall_seconds()
    stopped = sum(float(e.get("stopped_seconds") or 0.0) for e in spans)
    unclocked = sum("stopped_seconds" not in e for e in spans)  # timed before core.clock: pauses inside
    killed = [e for e in spans if e.get("status") == "cut short"]
    blind = [e for e in killed if not e.get("beats")]  # killed before beats were written: no measure of its time
    running = [e for e in spans if e.get("status") == "running"]
    notes = []
    if unclocked:
        notes.append(f"{unclocked} of {len(spans)} pass(es) and step(s) were timed before the stop-aware clock, and "
                     "their seconds include any pause")
    text = (f"## Time (measured)\n\nWall time: **{_hours(wall)}**, the sum of every pass's and step's seconds in "
            f"`{state.path.name}` over {n_runs} run(s) (loading, training and evaluation; a run killed outright "
            f"counts until its last heartbeat, written every {state.beat_seconds:g} s; time the process was stopped, "
            f"e.g. paused with SIGSTOP while tests ran, is not counted" + (f": {_hours(stopped)} of it" if stopped
                                                                            else "")
            + "".join(f"; {n}" for n in notes) + ").")
    if killed:
        text += f" {len(killed)} pass(es) or step(s) were killed before they ended"
        if blind:
            text += (f"; {len(blind)} of them before heartbeats were written, and their time is **not in the wall "
                     f"time** above: they ran at most {_hours(bound)} more in all, the time from each one's start to "
                     "the next run's (which also holds any pause and any time nothing ran)")
            if unbounded:
                text += ", and the last one has no later run to bound it"
        text += "."
    if running:
        names = ", ".join(f"`{e.get('step')}`" for e in running)
        text += f" Running now: {names}, counted until its last heartbeat."
    median = (f"; at each model's median epoch {_hours(train_median_s)}, as some were timed with pauses inside (†)"
              if train_median_s is not None and train_median_s < train_s else "")
    return text + (f" Computation: **{_hours(train_s + eval_s)}**: training {_hours(train_s)} (the models below, "
                   f"their per-epoch seconds{median}) and evaluating the passes' cells {_hours(eval_s)} (the records' "
                   "`seconds`). Computation counts every model and record on this page, whichever run made it: "
                   "those another plan in this workdir trained or recorded, and this one reused, cost this "
                   "campaign's wall time nothing.\n")


def _figure(x: float) -> str:
    """A metric's value or difference: two decimals where that keeps three significant digits (ECE in percent),
    else three significant digits (a local-linearity gamma or a KID of 0.004 is not "0.00")."""
    return f"{x:.2f}" if abs(x) >= 1 or x == 0 else f"{x:.3g}"


def _interval(rec: dict, metric: str) -> str:
    from varmixup_bench.results.stats import format_interval

    from varmixup_bench.views.leaderboard import METRIC_UNITS

    f = METRIC_FIELD[metric]
    if metric == "value":  # a metric's value in its unit (its uncertainty is in the paired test's SE)
        unit = METRIC_UNITS.get(rec.get("metric") or "", rec.get("metric") or "")
        return f"{_figure(float(rec[f]))} {unit}".strip()
    return format_interval(float(rec[f]), float(rec[f"{f}_ci_low"]), float(rec[f"{f}_ci_high"]))


def claim_rows(plan: Plan, cell_record, alpha: float | None = None, record_of=None) -> list[dict[str, Any]]:
    """Each claim with its two records, its paired test and its verdict; the claims whose cells are both recorded
    are decided together (Holm–Bonferroni over the two-sided p values at family-wise `alpha`, FAMILY_ALPHA when
    the claims are the only comparisons; a page shares it with its other families: page_families). With
    `record_of` ((pass name, cell) -> record), a claim with a side pooled over seeds is decided seed by seed
    (seed_test); its pooled comparison stays on the row, its p as `recipe_p`."""
    from varmixup_bench.results.stats import FAMILY_ALPHA, compare_records, holm

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
            try:
                row["cmp"] = compare_records(a, b, (claim.better.metric, claim.worse.metric))
            except ValueError:
                row["verdict"] = "untestable: no per-image values"
            else:
                row["p"], row["claimed"] = claim_test(claim, row["cmp"])
                pairs = seed_pairs(claim, record_of) if record_of is not None else None
                if pairs:
                    try:
                        per_seed = [(seed, compare_records(x, y, (claim.better.metric, claim.worse.metric)))
                                    for seed, x, y in pairs]
                    except ValueError:  # a metric's value without per-image values in some seed: the pooled test
                        per_seed = None
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


def _claims_section(rows: list[dict[str, Any]], alpha: float) -> str:
    from varmixup_bench.results.stats import levels_note, p_figure, p_text, percent

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
            num = _figure if c.better.metric == "value" else (lambda x: f"{x:.1f}")
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


def _model_seconds(meta: dict) -> float:
    """Training seconds: the per-epoch seconds of the history (kept across a resume from a checkpoint), else the
    meta's seconds of the run that saved the model."""
    hist = meta.get("history") or []
    if hist and all("seconds" in h for h in hist):
        return float(sum(h["seconds"] for h in hist))
    return float(meta.get("seconds") or 0.0)


def _unclocked(meta: dict) -> bool:
    """Whether some epoch of the history was timed before the stop-aware clock (core.clock): its seconds include
    any time the process was stopped (a SIGSTOP while tests ran), so they can read far above the training's."""
    hist = meta.get("history") or []
    return any("seconds" in h and "stopped_seconds" not in h for h in hist)


def _median_epoch(meta: dict) -> float | None:
    """The median of the history's per-epoch seconds (a few epochs with a pause inside do not move it)."""
    secs = [float(h["seconds"]) for h in meta.get("history") or [] if "seconds" in h]
    return float(np.median(secs)) if secs else None


def training_rows(workdir: Path, records: list[dict], vae_keys: set[str]) -> list[dict[str, Any]]:
    """One row per trained classifier the records evaluated and per VAE its recipe used (or a step drew), read
    from the models' meta.json."""
    from varmixup_bench.training.cache import WeightCache

    used: dict[str, set[str]] = {}
    for r in records:
        used.setdefault(str(r.get("config_hash")), set()).add(r["defense"])
    rows, vae_configs = [], []
    models = WeightCache(workdir)
    for key, defenses in sorted(used.items()):
        path = models.folder(key) / "meta.json"
        if not path.exists():
            continue  # a zoo model, or weights no longer in the cache
        meta = json.loads(path.read_text())
        cfg = meta.get("config", {})
        if isinstance(cfg.get("recipe_config", {}).get("vae"), dict):
            vae_configs.append(cfg["recipe_config"]["vae"])
        rows.append({"model": cfg.get("recipe", "?"), "used by": ", ".join(sorted(defenses)), "seed": cfg.get("seed"),
                     "epochs": len(meta.get("history") or []) or cfg.get("epochs"), "seconds": _model_seconds(meta),
                     "median": _median_epoch(meta), "unclocked": _unclocked(meta), "key": key, "config": cfg})
    vaes = WeightCache(workdir, "vaes")
    for path in sorted(vaes.root.glob("*/meta.json")) if vaes.root.exists() else []:
        meta = json.loads(path.read_text())
        cfg = meta.get("config", {})
        if path.parent.name in vae_keys or cfg in vae_configs:
            kind = "adversarial MMD-VAE" if cfg.get("adversarial") else "MMD-VAE"
            rows.append({"model": kind, "used by": "Var* recipes" if cfg in vae_configs else "vae-figure step",
                         "seed": cfg.get("seed"), "epochs": len(meta.get("history") or []) or cfg.get("epochs"),
                         "seconds": _model_seconds(meta), "median": _median_epoch(meta), "unclocked": _unclocked(meta),
                         "key": path.parent.name, "config": cfg})
    return _named_apart(rows)


def _cost_config(cfg: dict) -> dict:
    """A model's or VAE's config as its training-budget row tells it apart: no seed at any depth (a Var*
    classifier's MMD-VAE is seeded from the training seed), no epochs (a column), a Var* classifier's VAE epochs
    as `vae_epochs`."""
    from varmixup_bench.results.record import _without_seeds

    out = {k: v for k, v in _without_seeds(cfg).items() if k != "epochs"}
    vae = (out.get("recipe_config") or {}).get("vae")
    if isinstance(vae, dict) and "epochs" in vae:
        vae = {("vae_epochs" if k == "epochs" else k): v for k, v in vae.items()}
        out["recipe_config"] = {**out["recipe_config"], "vae": vae}
    return out


def _named_apart(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of one model name trained in several ways (a VAE ladder's latents, Mixup at another eta, the Var*
    classifiers of each VAE) get what differs in their configs beside the name; the seed and the epochs have
    their own columns."""
    from varmixup_bench.results.record import differing_fields

    by_name: dict[str, list[dict]] = {}
    for r in rows:
        by_name.setdefault(r["model"], []).append(r)
    for group in by_name.values():
        configs = [_cost_config(r.pop("config")) for r in group]
        if len({json.dumps(c, sort_keys=True, default=str) for c in configs}) > 1:
            for r, d in zip(group, differing_fields([{"c": c} for c in configs], ["c"])):
                r["model"] = f"{r['model']} ({d})" if d else r["model"]
    return rows


def _training_section(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no trained model recorded yet)\n"
    lines = ["| model | used by | seed | epochs | seconds | s / epoch (mean) | s / epoch (median) | key |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in sorted(rows, key=lambda r: (r["seed"] if r["seed"] is not None else -1, r["model"])):
        per = f"{r['seconds'] / r['epochs']:.1f}" if r["epochs"] else "—"
        median = f"{r['median']:.1f}" if r.get("median") is not None else "—"
        mark = "†" if r.get("unclocked") else ""
        lines.append(f"| {r['model']} | {r['used by']} | {r['seed']} | {r['epochs']} | {r['seconds']:.1f}{mark} | {per} | "
                     f"{median} | `{r['key']}` |")
    note = ""
    if any(r.get("unclocked") for r in rows):
        note = ("\n† timed (in part) before the stop-aware clock: those epochs' seconds include any time the process "
                "was stopped (paused with SIGSTOP while tests ran), so the mean per epoch can read far above the "
                "training's; the median per epoch is not moved by a few such epochs.\n")
    return "\n".join(lines) + "\n" + note


def _copy_out(src: Path, files: Path) -> Path:
    """A step's output (a report folder or a PNG) copied beside the page, so that the page is self-contained."""
    files.mkdir(parents=True, exist_ok=True)
    dest = files / src.name
    if src.is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dest)
    return dest


def _steps_section(plan: Plan, steps, page_dir: Path, files: Path) -> str:
    if not steps:
        return ""
    out = ["## Extra steps", ""]
    for st in steps:
        if st.done is None:
            out += [f"- `{st.name}` ({st.kind}): not finished with the plan's current settings", ""]
            continue
        res = st.done.get("result") or {}
        head = f"- `{st.name}` ({st.kind}, finished {st.done['time']}, {float(st.done['seconds']):.1f} s)"
        links = [_copy_out(Path(p), files) for p in st.done.get("outputs", []) if Path(p).exists()]
        rel = [p.relative_to(page_dir) for p in links]
        out += STEPS.get(st.kind).describe(head, res, rel, st.name)
        out.append("")
    return "\n".join(out) + "\n"


def passes_of(passes: list, latest: dict[str, dict]) -> dict[tuple[str, str], list[str]]:
    """(defense, model config hash) -> the passes whose recorded cells evaluated it, in plan order."""
    out: dict[tuple[str, str], list[str]] = {}
    for st in passes:
        for key in st.keys.values():
            rec = latest.get(key)
            if rec is not None:
                names = out.setdefault((str(rec.get("defense")), str(rec.get("config_hash"))), [])
                names += [st.name] * (st.name not in names)
    return out


def finding_lines(findings: list, where: dict[tuple[str, str], list[str]]) -> list[str]:
    """One line per diagnose finding, naming the passes that evaluated its model: one defense and seed trained
    on several VAEs (a fidelity ladder) is several models, and the seed alone does not say which one fired."""
    lines = []
    for f in findings:
        names = where.get((f.defense, f.config_hash), [])
        at = f"; pass{'es' * (len(names) > 1)} {', '.join(f'`{n}`' for n in names)}" if names else ""
        lines.append(f"- ⚠ {f.dataset} {f.defense} (seed {f.seed}{at}) `{f.check}`: {f.message}")
    return lines


def compose(plan: Plan, workdir: Path, output: Path, command: str | None = None, device: str = "auto") -> Composed:
    """Write the page to `output` and the long CSV beside it (same name, .csv); returns what is still missing."""
    from varmixup_bench.core.atomic import atomic_write_text
    from varmixup_bench.results.stats import family_share, percent
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.views.diagnostics import comparisons_made, diagnose
    from varmixup_bench.views.headline import render_headline
    from varmixup_bench.views.leaderboard import eps_text, leaderboard_frame, render, render_wide, wide_frame

    workdir, output = Path(workdir), Path(output)
    passes = pass_status(plan, workdir, device)
    steps = step_status(plan, workdir)
    latest = {r["sweep_key"]: r for r in ResultStore(workdir).records() if "sweep_key" in r}  # oldest first
    keys = {(st.name, c): k for st in passes for c, k in st.keys.items()}
    records = list({k: latest[k] for st in passes for k in st.keys.values() if k in latest}.values())
    share = family_share(page_families(plan))  # every family of the page's comparisons at its share of 5 %
    frame = leaderboard_frame(records, alpha=share)
    state = CampaignState(plan.state_path(workdir))
    events = state.events()
    runs = [e for e in events if e.get("event") == "run"]
    done = Composed(output, output.with_suffix(".csv"))
    done.missing_cells = [f"pass `{st.name}`: {cell_text(c, st.norm)}" for st in passes for c in st.missing]
    done.missing_steps = [f"step `{st.name}` ({st.kind})" for st in steps if st.done is None]
    vae_keys = {str((e.get("result") or {}).get("vae")) for e in state.ends() if e.get("kind") == "vae-figure"}
    models = training_rows(workdir, records, vae_keys)
    record_of = lambda name, cell: latest.get(keys.get((name, cell)))  # noqa: E731
    rows = claim_rows(plan, lambda ref: side_record(ref, record_of), share, record_of)
    done.claims = rows

    train_s = sum(m["seconds"] for m in models)
    eval_s = sum(float(r.get("seconds") or 0.0) for r in records)
    commands = list(dict.fromkeys(e["command"] for e in runs if e.get("command")))
    commands.append(command or f"bench campaign compose {plan.path} --workdir {workdir} --output {output}")
    commits = list(dict.fromkeys(str(e.get("commit")) for e in runs if e.get("commit")))
    machines = list(dict.fromkeys(f"{e.get('platform')}, {e.get('cpus')} CPUs" for e in runs if e.get("platform")))
    threads = sorted({int(r["threads"]) for r in records if r.get("threads") is not None})
    devices = sorted({str(r["device"]) for r in records if r.get("device")})
    n_images = sorted({int(r["n_examples"]) for r in records if r.get("n_examples") is not None})
    n_cells = sum(len(st.cells) for st in passes)

    parts = [f"# Campaign `{plan.name}`\n"]
    if plan.description:
        parts.append(plan.description.strip() + "\n")
    if not done.complete:
        missing = len(done.missing_cells)
        of_steps = f" and {len(done.missing_steps)} of {len(steps)} step(s)" if steps else ""
        parts.append(f"> **PARTIAL — {missing} of {n_cells} cell(s){of_steps} not recorded yet** (listed under "
                     f"\"Missing\" at the end). `bench campaign run` resumes "
                     f"and fills only those; until then the tables and verdicts below are provisional.\n")
    settings = plan.settings()
    sets = "; ".join([f"campaign: `{json.dumps(plan.overrides)}`"] * bool(plan.overrides) + [
        f"pass {p.name}: `{json.dumps({k: v for k, v in p.overrides.items() if plan.overrides.get(k) != v})}`"
        for p in plan.passes if any(plan.overrides.get(k) != v for k, v in p.overrides.items())])
    from varmixup_bench.attacks.spec import attack_class

    # a pass whose attacks take no radius (clean, corruptions, KID, ECE) has none to list
    radii = "; ".join(
        f"{p.name}: " + (", ".join(eps_text(e, p.norm) for e in p.eps) if p.eps else
                         f"{eps_text(p.settings.eps_for(None, plan.dataset), p.norm)} "
                         f"({p.settings.eps_source(None, plan.dataset)})") for p in plan.passes
        if any(attack_class(a).uses_eps for a in p.attacks))
    parts.append(
        f"Plan `{plan.path.name}` (sha256 `{plan.sha256[:12]}`): dataset `{plan.dataset}`, preset "
        f"`{settings.name}`" + (f", overrides {sets}" if sets else "") + f". Radius per pass: {radii or 'none'}. "
        f"{n_cells} cell(s) in {len(plan.passes)} pass(es), {len(records)} recorded; test images per cell: "
        f"{', '.join(map(str, n_images)) or '—'}.\n")
    parts.append("Commands:\n\n```\n" + "\n".join(commands) + "\n```\n")
    parts.append(f"Code: commit {', '.join(f'`{c}`' for c in commits) or '(none recorded)'} (runs); "
                 f"`{git_commit() or 'not a git checkout'}` (this page). Machine: {'; '.join(machines) or '—'}; "
                 f"torch threads {', '.join(map(str, threads)) or '—'}, device {', '.join(devices) or '—'} "
                 f"(the records' `threads` and `device`).\n")
    if plan.reading is not None:
        if plan.reading.is_file():
            text = plan.reading.read_text().strip()
            parts.append(text if text.startswith("## ") else "## Reading\n\n" + text)
            parts[-1] += "\n"
        else:
            parts.append(f"## Reading\n\n(not written yet: the plan names `{plan.reading.name}`)\n")
    median_s = (sum((m["median"] or 0.0) * (m["epochs"] or 0) if m.get("unclocked") else m["seconds"] for m in models)
                if any(m.get("unclocked") for m in models) else None)
    parts.append(_time_section(state, len(runs), train_s, eval_s, median_s))
    table = ["| pass / step | cells | missing | runs | cells evaluated | seconds | last finished (UTC) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    table += [f"| pass `{st.name}` | {len(st.cells)} | {len(st.missing)} | {st.runs} | {st.cells_run} | "
              f"{st.seconds:.1f} | {st.last_end or '—'} |" for st in passes]
    table += [f"| step `{st.name}` | — | — | {st.runs} | — | {st.seconds:.1f} | "
              f"{st.done['time'] if st.done else '—'} |" for st in steps]
    parts.append("\n".join(table) + "\n")
    parts.append("## Training budget (measured)\n\n" + _training_section(models))
    parts.append("## Headline\n\n" + (render_headline(frame, "md", alpha=share) if records else "(no cell recorded yet)\n"))
    wide = wide_frame(frame, alpha=share) if records else None
    if plan.reference and records:
        from varmixup_bench.views.beside import parse_reference, render_beside

        name, ref_dataset = parse_reference(plan.reference)
        parts.append(f"## Beside the reference (`{plan.reference}`)\n\n" + render_beside(wide, name, ref_dataset,
                                                                                            plan.settings()))
    parts.append("## Full matrix\n\n" + (render_wide(wide, "md") if records else "(no cell recorded yet)\n"))
    parts.append("## Claims\n\n" + _claims_section(rows, share))
    findings = diagnose(frame, share) if records else []
    compared = comparisons_made(frame) if records else 0
    diag = ("\n".join(finding_lines(findings, passes_of(passes, latest)))
            if findings else f"No warning sign ({compared} comparison(s) decided together, family-wise {percent(share)}).")
    parts.append("## Gradient-masking flags (`bench diagnose`'s checks on these cells, at the page's share)\n\n"
                 + diag + "\n")
    parts.append(_steps_section(plan, steps, output.parent, output.parent / f"{output.stem}-files"))
    if not done.complete:
        parts.append("## Missing\n\n" + "\n".join(f"- {m}" for m in done.missing_cells + done.missing_steps) + "\n")
    parts.append(f"The long CSV (every record field, one row per cell): [`{done.csv.name}`]({done.csv.name}).\n")
    atomic_write_text(output, "\n".join(p for p in parts if p))
    atomic_write_text(done.csv, render(frame, "csv") if records else "")
    return done
