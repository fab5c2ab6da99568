"""The headline view, the default of `bench leaderboard --format md|html`: one table per dataset, one row per
defense as trained, and the three numbers a reader needs, each with its 95 % interval —

- **clean** accuracy;
- **strongest @ ε**: robust accuracy under the strongest attack recorded at the dataset's main ε (`main_eps`),
  with that attack named;
- **ensemble @ ε**: per image, correct only if correct under *every* attack recorded for that model at that ε
  and norm (the rule AutoAttack and RobustBench use), on the images all those attacks evaluated. For a
  randomised defense an image's outcome under an attack is a rate (correct draws and trials over all), and the
  ensemble is per image the product of the rates: the expected outcome of that rule, each attack tried once;
  `ensemble worst-case` takes per image the worst case over draws (correct in every draw) under every attack.

Every diagnostic finding (varmixup_bench.views.diagnostics) is a ⚠ with a footnote number beside the cell it concerns, its check
and reason below the table. A bold cell is the best of its column and significantly above every other row, with
Holm–Bonferroni over the columns of every dataset's table together. `--layout wide` keeps the full matrix.
"""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from varmixup_bench.results.stats import (FAMILY_ALPHA, compare_records, decode_per_image, format_interval, holm,
                                         levels_note, paired_test, unpaired_test, wilson_interval)
from varmixup_bench.core.errors import BenchError
from varmixup_bench.results.record import eps_label, eps_text
from varmixup_bench.views.diagnostics import diagnose
from varmixup_bench.views.htmlpage import SORTER, STYLE, _code, _images, page  # noqa: F401  (re-exported)
from varmixup_bench.views.diagnostics import predictor_keys, same_step
from varmixup_bench.views.leaderboard import _draws, above_every_other, differing_fields, _row_labels

MAIN_NORM = "Linf"
# records that are not a robust-accuracy attack: no radius, or a metric rather than an accuracy
NOT_ROBUST = ("clean", "corruptions", "ece", "linearity")
COLUMNS = ("clean", "strongest", "ensemble", "worst")


def _eps_key(eps: Any) -> float:
    return round(float(eps), 8)


def robust_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The records that are robust-accuracy attacks in the main norm (L∞): a radius above 0 and a robust
    accuracy; clean, corruptions and metrics such as ECE or local linearity are not."""
    if frame.empty:
        return frame
    norm = frame["norm"] if "norm" in frame else pd.Series(MAIN_NORM, index=frame.index)
    eps = pd.to_numeric(frame["eps"], errors="coerce").fillna(0.0)
    keep = ((norm == MAIN_NORM) & (eps > 0) & ~frame["attack"].isin(NOT_ROBUST)
            & (frame["threat_model"] != "none") & pd.to_numeric(frame["robust_acc"], errors="coerce").notna())
    return frame[keep]


def main_eps(frame: pd.DataFrame) -> float | None:
    """The main ε of a dataset's records: the L∞ radius that most robust-accuracy records share (robust_rows:
    ε > 0; clean, corruptions and ECE do not count). Ties go to the radius more distinct attacks were run at,
    then to the larger radius. None when no record qualifies. One preset runs its whole attack suite at its
    main ε and only the ε curve elsewhere, so this is the preset's `eps` whatever the sweep added."""
    rows = robust_rows(frame)
    if rows.empty:
        return None
    keys = rows["eps"].map(_eps_key)
    stats = [(int((keys == k).sum()), rows.loc[keys == k, "attack"].nunique(), k) for k in sorted(set(keys))]
    return max(stats)[2]


@dataclass
class Cell:
    mean: float
    lo: float
    hi: float
    n: int
    note: str = ""  # the attack that achieved it, or how many attacks the ensemble holds
    which: str = "robust"  # the record field compared (clean | robust | worst)
    rec: dict | None = None  # the record (clean, strongest), for the paired test of the bold mark
    outcomes: tuple[np.ndarray, np.ndarray] | None = None  # (image indices, per-image outcome) of an ensemble
    flags: list[int] = field(default_factory=list)
    bold: bool = False
    # whether the cell competes for the bold mark: not where every attack behind it is oblivious (an attack on a
    # randomised rule's classifier alone is no robustness of the defended predictor; the page flags it)
    ranked: bool = True


@dataclass
class Row:
    label: str
    cells: dict[str, Cell]
    stochastic: bool = False
    flags: list[int] = field(default_factory=list)  # findings about no headline cell (other ε, L2, other seeds)


@dataclass
class Table:
    dataset: str
    eps: float | None
    n: int | None  # the number of test images most records have (cells on another number say so)
    rows: list[Row]
    footnotes: list[tuple[int, str]]  # (number, text)


def _labels(frame: pd.DataFrame) -> list[str]:
    return _row_labels(frame.reset_index(drop=True))


def _seed_of(g: pd.DataFrame) -> float:
    s = pd.to_numeric(g["seed"], errors="coerce").dropna() if "seed" in g else pd.Series(dtype=float)
    return float(s.min()) if len(s) else math.inf


def _attack_names(rows: pd.DataFrame) -> list[str]:
    """The attack of each record, plus what differs where one attack was recorded in several ways."""
    names = list(rows["attack"])
    for attack in set(names):
        idx = [i for i, a in enumerate(names) if a == attack]
        if len(idx) > 1:
            recs = [rows.iloc[i].to_dict() for i in idx]
            for i, d in zip(idx, differing_fields(recs, ["step", "n_examples", "attack_config", "trials"])):
                names[i] = f"{attack} ({d})" if d else attack
    return names


def _outcomes(rec: dict, which: str) -> dict | None:
    """The record's decoded per-image results if they hold `which` (a record of several draws written without
    its per-image worst case has none), else None."""
    d = decode_per_image(rec.get("per_image"))
    return d if d is not None and d.get(which) is not None else None


def _ensemble(recs: list[dict], which: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(common image indices, per-image product of the records' outcomes) or None without per-image results.

    The product is the expected outcome of AutoAttack's rule (an image is robust only if every attack, each
    tried once, fails): 0/1 outcomes give the AND; a randomised defense's rates, each attack's draws independent
    of the others', give an unbiased estimate of surviving one try of each. (The lowest rate per image, used
    before 2026-12-01, chose and reported on the same draws: with k equal attacks at a true 50 % it read 41 %
    for k = 2 and 21 % for k = 20, a bias of its own that no interval showed.)"""
    decoded, seen = [], set()
    for d in (_outcomes(r, which) for r in recs):
        if d is None:
            continue
        # one evaluation stored twice (a budget spec's same_as copy of its named preset) is one attack: the same
        # draws multiplied by themselves would square its rates
        key = (d["idx"].tobytes(), np.asarray(d[which], dtype=float).tobytes())
        if key not in seen:
            seen.add(key)
            decoded.append(d)
    if not decoded:
        return None
    common = decoded[0]["idx"]
    for d in decoded[1:]:
        common = np.intersect1d(common, d["idx"])
    if len(common) == 0:
        return None
    vals = []
    for d in decoded:
        order = np.argsort(d["idx"], kind="stable")
        pos = order[np.searchsorted(d["idx"][order], common)]
        vals.append(np.asarray(d[which], dtype=float)[pos])
    return common, np.prod(vals, axis=0)


def _ensemble_cell(recs: list[dict], which: str, left_out: Sequence[str] = ()) -> Cell | None:
    """The ensemble (or its worst case) of `recs` as a cell; its note counts the attacks, says which records have
    no per-image results, which held one draw (a worst case over one draw is that draw) and which attacks on a
    subset of the images were `left_out`."""
    ens = _ensemble(recs, which)
    if ens is None:
        return None
    idx, v = ens
    n = len(v)
    lo, hi = wilson_interval(float(v.sum()), n)
    with_images = [r for r in recs if _outcomes(r, which) is not None]
    note = f"{len(with_images)} attack{'s' if len(with_images) != 1 else ''}"
    extra = []
    if len(with_images) < len(recs):
        note += f" of {len(recs)}"
        extra.append(f"the others keep no per-image {'worst case' if which == 'worst' else 'results'}")
    one_draw = [r["attack"] for r in with_images if which == "worst" and _draws(r) == 1]
    if one_draw:
        extra.append(f"{', '.join(one_draw)} with one draw")
    if left_out:
        extra.append(f"{', '.join(left_out)} left out")
    return Cell(100.0 * float(v.mean()), lo, hi, n, "; ".join([note, *extra]), which, None, (idx, v))


def _threat(rec: dict) -> str:
    return str(rec.get("threat_model") or "")


def _n_of(rec: dict) -> int:
    """The number of test images a record evaluated (0 where unknown)."""
    try:
        return int(float(rec.get("n_examples")))
    except (TypeError, ValueError):
        return 0


def _record_cell(rec: dict, which: str, note: str = "") -> Cell:
    key = "clean_acc" if which == "clean" else "robust_acc"
    return Cell(float(rec[key]), float(rec[f"{key}_ci_low"]), float(rec[f"{key}_ci_high"]),
                _n_of(rec), note, which, rec)


def _eps_text(eps: float, norm: str) -> str:
    return eps_text(eps, norm)


def _close(a: float, b: float) -> bool:
    # main_eps returns a rounded key (_eps_key): compare keys, not raw radii (32/255 is 3.9e-9 from its key, and
    # the digits headline lost its strongest and ensemble columns to a 1e-9 tolerance)
    return _eps_key(a) == _eps_key(b)


def headline_tables(frame: pd.DataFrame, alpha: float = FAMILY_ALPHA, findings: list | None = None) -> list[Table]:
    """The headline tables of a leaderboard frame (varmixup_bench.views.leaderboard.leaderboard_frame), one per dataset.

    A row is one defense as trained (the wide table's rows: several training seeds are one row); where it holds
    several seeds, its cells are those of one trained model, the one with the most attacks at the main ε (ties:
    the lowest seed), so that no attack's three-seed mean is set against another's single seed (the wide
    table pools the seeds). `findings`: diagnose's on this frame at `alpha` where the caller has them
    (views.leaderboard.flagged_frame), else decided here."""
    tables, number = [], 0
    # one diagnose call over the whole frame at the command's `alpha` (here where the caller gave none): the same
    # Holm family as the long table's `flags` and the wide table's ⚠ (bench diagnose alone decides it at the full 5 %)
    if findings is None:
        findings = diagnose(frame, alpha) if not frame.empty else []
    for dataset, g in frame.groupby("dataset", sort=True):
        g = g.reset_index(drop=True)
        g = g.assign(_row=_labels(g), _model=predictor_keys(g))  # as diagnose names a finding's model
        eps = main_eps(g)
        ns = pd.to_numeric(g["n_examples"], errors="coerce").dropna()
        n_main = int(ns.mode().max()) if len(ns) else None
        rows: dict[str, Row] = {}
        chosen: dict[str, str] = {}  # row label -> the model shown
        strongest_attack: dict[str, str] = {}
        for label in dict.fromkeys(g["_row"]):
            rg = g[g["_row"] == label]
            models = list(rg.groupby("_model", sort=False))

            def at_main(m: pd.DataFrame) -> pd.DataFrame:
                r = robust_rows(m)
                return r[[_close(e, eps) for e in r["eps"]]] if eps is not None else r.iloc[0:0]

            model, mg = min(models, key=lambda t: (-len(at_main(t[1])), _seed_of(t[1]), t[0]))
            chosen[label] = model
            text = label
            if len(models) > 1:
                seed = _seed_of(mg)
                text += f" (seed {int(seed) if seed != math.inf else '?'}; {len(models)} seeds trained)"
            cells: dict[str, Cell] = {}
            clean = mg[mg["attack"] == "clean"]
            src = clean.iloc[-1] if len(clean) else next(
                (r for _, r in mg.iterrows() if pd.notna(r.get("clean_acc")) and pd.notna(r.get("clean_acc_ci_low"))),
                None)
            if src is not None:
                cells["clean"] = _record_cell(src.to_dict(), "clean")
            attacks = at_main(mg)
            stochastic = "stochastic" in mg and bool(mg["stochastic"].map(lambda v: v is True or v == "True").any())
            if len(attacks):
                names = _attack_names(attacks)
                recs = [r.to_dict() for _, r in attacks.iterrows()]
                # the lowest; on a tie the attack run under its own name (not a budget that reused it, same_as)
                i = min(range(len(recs)), key=lambda j: (float(recs[j]["robust_acc"]), bool(recs[j].get("same_as")
                        if isinstance(recs[j].get("same_as"), str) else False), len(names[j]), names[j]))
                cells["strongest"] = _record_cell(recs[i], "robust", names[i])
                cells["strongest"].ranked = _threat(recs[i]) != "oblivious"
                strongest_attack[label] = recs[i]["attack"]
                # the ensemble over the attacks on the table's images: one run on a subset (SPSA on 200) would cut
                # the whole ensemble, and every comparison of it, to that subset
                # (the row's largest image count among its attacks here; an unknown count is kept)
                n_row = max(_n_of(r) for r in recs)
                whole = [j for j, r in enumerate(recs) if not _n_of(r) or _n_of(r) >= n_row]
                left_out = [f"{names[j]} on {_n_of(recs[j])} images" for j in range(len(recs)) if j not in whole]
                ens_recs = [recs[j] for j in whole]
                ens = _ensemble_cell(ens_recs, "robust", left_out)
                only_oblivious = all(_threat(r) == "oblivious" for r in ens_recs)
                if ens is not None:
                    ens.ranked = not only_oblivious
                    cells["ensemble"] = ens
                # a worst case over draws where some attack drew several times (with one draw each it is the
                # ensemble again, and would be ranked against worst cases over ten)
                if stochastic and any(_draws(r) > 1 for r in ens_recs):
                    worst = _ensemble_cell(ens_recs, "worst", left_out)
                    if worst is not None:
                        worst.ranked = not only_oblivious
                        cells["worst"] = worst
            rows[label] = Row(text, cells, stochastic)
        if any("worst" in r.cells for r in rows.values()):
            # a deterministic predictor is correct in every draw where it is correct: its worst case is its
            # ensemble, and the column ranks it too (else the best worst case went to a randomised rule below it)
            for r in rows.values():
                if not r.stochastic and "ensemble" in r.cells:
                    e = r.cells["ensemble"]
                    r.cells["worst"] = Cell(e.mean, e.lo, e.hi, e.n, e.note + "; deterministic: its ensemble",
                                            "worst", None, e.outcomes, ranked=e.ranked)
        footnotes = []
        model_row = {(d, m): lab for lab, d, m in zip(g["_row"], g["defense"], g["_model"])}
        for f in findings:
            label = model_row.get((f.defense, f.model)) if f.dataset == dataset else None
            if label is None:
                continue
            row = rows[label]
            number += 1
            seed = f" (seed {f.seed})" if f.seed and len(g[g["_row"] == label]["_model"].unique()) > 1 else ""
            radii = sorted({float(e) for _, e in f.rows})
            where = "" if eps is not None and f.norm == MAIN_NORM and all(_close(e, eps) for e in radii) else (
                " [ε = " + ", ".join(_eps_text(e, f.norm) for e in radii) + "]")
            footnotes.append((number, f"{f.check}{seed}{where}: {f.message}"))
            # beside the number the finding says reads too high where the table shows it (the strongest attack's,
            # or clean), else beside the row's name: an oblivious number that overstates is not in the headline,
            # and its ⚠ beside the adaptive number shown would mark the trustworthy one
            target = None
            over = f.overstated or (f.rows[0] if f.rows else None)
            if f.model == chosen[label] and f.norm == MAIN_NORM and over is not None:
                attack, at = over
                step = next((s for a, e, s in f.stepped_rows() if (a, e) == tuple(over)), None)
                strongest = row.cells.get("strongest")
                if attack == "clean" and "clean" in row.cells:
                    target = row.cells["clean"]
                elif (eps is not None and _close(at, eps) and strongest_attack.get(label) == attack
                      and strongest is not None and same_step(step, (strongest.rec or {}).get("step"))):
                    target = strongest
            (target.flags if target is not None else row.flags).append(number)
        tables.append(Table(str(dataset), eps, n_main, list(rows.values()), footnotes))
    mark_best(tables, alpha)
    return tables


def _best_p(a: Cell, b: Cell) -> float:
    """Two-sided p of "a differs from b", for a above b (1 otherwise): paired on the common images where both
    have per-image outcomes (records: stats.compare_records; ensembles: their per-image products), else the
    unpaired z test. The direction was chosen by looking (a is the best), so the p value stays two-sided."""
    if a.rec is not None and b.rec is not None:
        cmp = compare_records(a.rec, b.rec, (a.which, b.which))
    elif a.outcomes is not None and b.outcomes is not None:
        common, ia, ib = np.intersect1d(a.outcomes[0], b.outcomes[0], assume_unique=True, return_indices=True)
        if len(common) > 1:
            cmp = paired_test(a.outcomes[1][ia], b.outcomes[1][ib], 1)
        else:
            cmp = unpaired_test(a.mean, a.n, 0.0, 1, b.mean, b.n, 0.0, 1)
    else:
        return float("nan")
    return cmp.p if cmp.diff > 0 else 1.0


def mark_best(tables: list[Table], alpha: float = FAMILY_ALPHA) -> None:
    """Bold the best cell of each column of each dataset's table where it is significantly above every other row
    (leaderboard.above_every_other), Holm–Bonferroni over those columns of all the tables together (one family,
    family-wise error `alpha`, however many datasets)."""
    tests = []
    for table in tables:
        for col in COLUMNS:
            cells = [r.cells[col] for r in table.rows if col in r.cells and r.cells[col].ranked]
            if len(cells) < 2:
                continue
            ranked = sorted(cells, key=lambda c: -c.mean)
            tests.append((ranked[0], above_every_other(ranked[0], ranked[1:], _best_p)))
    pvalues = [p for _, p in tests]
    for (cell, _), reject in zip(tests, holm(pvalues, alpha)):
        cell.bold = reject


# ---- rendering ----

def _headers(t: Table) -> dict[str, str]:
    e = eps_label(t.eps) if t.eps is not None else None
    return {"clean": "clean", "strongest": f"strongest @ {e} (attack)", "ensemble": f"ensemble @ {e}",
            "worst": f"ensemble worst-case @ {e}"}


def _columns(t: Table) -> list[str]:
    if t.eps is None:
        return ["clean"]
    cols = ["clean", "strongest", "ensemble"]
    return cols + ["worst"] if any("worst" in r.cells for r in t.rows) else cols


def _value(c: Cell, t: Table) -> tuple[str, str]:
    """('28.0 [24.2, 32.1]', ' attack' or ' (3 attacks, n=200)'): the number and what qualifies it."""
    extra = [f"n={c.n}"] if t.n is not None and c.n and c.n != t.n else []
    num = format_interval(c.mean, c.lo, c.hi)
    if c.rec is not None and c.which == "robust" and c.note:  # the strongest attack, named
        return num, " " + ", ".join([c.note, *extra])
    extra = [c.note, *extra] if c.note else extra
    return num, f" ({', '.join(extra)})" if extra else ""


def _md_cell(c: Cell | None, t: Table) -> str:
    if c is None:
        return "–"
    num, extra = _value(c, t)
    num = f"**{num}**" if c.bold else num
    return num + extra + (" ⚠" + ",".join(map(str, c.flags)) if c.flags else "")


def _title(t: Table) -> str:
    eps = f"main ε = {eps_label(t.eps)} (L∞)" if t.eps is not None else "no L∞ attack recorded"
    n = f", n = {t.n} test images" if t.n else ""
    return f"{t.dataset}: {eps}{n}"


LEGEND = ("Accuracy (%) of the defended predictor [95 % interval]. clean, strongest: the record's interval "
          "(Wilson over its n images; with T trials widened by t(T-1)·s/√T of the trial spread). strongest: the "
          "lowest robust accuracy of the attacks recorded at the main ε (L∞), the attack named (the lowest of several "
          "estimates: its interval does not allow for that choice). ensemble: an image "
          "counts only if every one of those attacks failed on it (AutoAttack's and RobustBench's rule), over the "
          "images all of them evaluated (an attack run on fewer images than the row's others, such as SPSA on a "
          "subset, is left out and named); for a randomised defense, per image the product of its rates of correct "
          "classification under the attacks (the rule's expected outcome, each attack tried once); worst-case: "
          "correct in every draw of every attack, shown where some attack drew several times (a deterministic "
          "defense's is its ensemble, and is ranked with the others); Wilson interval over those n "
          "images. "
          "A cell on another number of images than the table's says n= (an ensemble on fewer images than the "
          "strongest attack's can come out above it by sampling noise). Bold: best in its column and "
          "significantly above every other row (paired tests on the same images, else unpaired z; the largest p), "
          "Holm–Bonferroni over the columns of every table here at the family-wise level below; a cell whose "
          "attacks are all oblivious (ᵒ: the classifier of a randomised rule, not the defended predictor) is not "
          "ranked. ⚠k: a finding of "
          "`bench diagnose`, its reason below, beside the number it says reads too high, or beside the defense "
          "where that number is not in this table (an oblivious accuracy that overstates robustness). "
          "A row of several training seeds shows the model with the most attacks at the main ε (its seed named; "
          "the full matrix has the seeds' mean). Every cell: "
          "`bench leaderboard --layout wide`.")


def render_md(tables: list[Table], alpha: float = FAMILY_ALPHA) -> str:
    if not tables:
        return "(no results)\n"
    parts = []
    for t in tables:
        cols = _columns(t)
        heads = _headers(t)
        lines = ["| defense | " + " | ".join(heads[c] for c in cols) + " |",
                 "|" + "---|" * (len(cols) + 1)]
        for r in t.rows:
            label = r.label.replace("|", "\\|") + (" ⚠" + ",".join(map(str, r.flags)) if r.flags else "")
            lines.append("| " + " | ".join([label] + [_md_cell(r.cells.get(c), t) for c in cols]) + " |")
        parts.append(f"### {_title(t)}\n\n" + "\n".join(lines))
        if t.footnotes:
            parts.append("\n".join(f"⚠{k} {text}  " for k, text in t.footnotes).rstrip())
    return "\n\n".join(parts) + f"\n\n{LEGEND} {levels_note(alpha)}\n"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "data"


def table_id(dataset: str) -> str:
    """The HTML id of a dataset's headline table."""
    return f"headline-{_slug(dataset)}"


def _html_cell(c: Cell | None, t: Table) -> str:
    if c is None:
        return '<td data-v="-1">–</td>'
    num, extra = _value(c, t)
    num = f'<span class="v">{f"<b>{html.escape(num)}</b>" if c.bold else html.escape(num)}</span>'
    return f'<td data-v="{c.mean:.6g}">{num}<small>{html.escape(extra)}</small>{_html_flags(c.flags)}</td>'


def _html_flags(flags: Sequence[int]) -> str:
    return "".join(f' <a class="flag" href="#fn{k}" title="see note {k}">⚠{k}</a>' for k in flags)


def render_html(tables: list[Table], plots: Sequence[Path] = (), alpha: float = FAMILY_ALPHA) -> str:
    body = []
    for t in tables:
        cols = _columns(t)
        heads = _headers(t)
        rows = []
        for r in t.rows:
            rows.append(f"<tr><td>{html.escape(r.label)}{_html_flags(r.flags)}</td>"
                        + "".join(_html_cell(r.cells.get(c), t) for c in cols) + "</tr>")
        body.append(f"<h2>{html.escape(_title(t))}</h2>"
                    f'<table class="sortable" id="{table_id(t.dataset)}"><thead><tr><th>defense</th>'
                    + "".join(f"<th>{html.escape(heads[c])}</th>" for c in cols)
                    + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")
        if t.footnotes:
            body.append('<ol class="notes">' + "".join(
                f'<li id="fn{k}" value="{k}">⚠{k} {_code(text)}</li>' for k, text in t.footnotes) + "</ol>")
    if not tables:
        body.append("<p>(no results)</p>")
    return page("varmixup-bench leaderboard", "".join(body), f"{LEGEND} {levels_note(alpha)}", plots)


def render_headline(frame: pd.DataFrame, fmt: str, plots: Sequence[Path] = (), alpha: float = FAMILY_ALPHA,
                    findings: list | None = None) -> str:
    """The headline view of a leaderboard frame as markdown or an HTML page (plots embedded); its bold marks and
    its diagnose findings each decided at family-wise `alpha` (stats.family_share); `findings`: as headline_tables."""
    tables = headline_tables(frame, alpha, findings) if not frame.empty else []
    if fmt == "md":
        return render_md(tables, alpha)
    if fmt == "html":
        return render_html(tables, plots, alpha)
    raise BenchError(f"--layout headline is for --format md or html, not {fmt!r} (csv and json: --layout long or wide)")
