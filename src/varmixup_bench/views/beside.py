"""A transcribed reference's numbers beside ours, one row per defense both hold: for each of the reference's
columns (e.g. the paper's Table 2 PGD-10 at 8/255 with its clean accuracy, Table 4's corruptions) the reference's
value, then ours under the same attack and radius, and for a randomised defense ours under the adaptive attack of
that name and its worst case over draws — the comparison a reader of the paper makes first, in a few columns
instead of the full matrix's dozens."""
from __future__ import annotations

import pandas as pd

from varmixup_bench.core.errors import BenchError


def parse_reference(text: str) -> tuple[str, str | None]:
    """`paper` or `paper:cifar10` -> (name, dataset or None), the reference checked to exist."""
    from varmixup_bench.views.leaderboard import reference_table

    name, _, dataset = str(text).partition(":")
    ref = reference_table(name)
    if dataset and dataset not in set(ref["dataset"]):
        have = ", ".join(sorted(set(ref["dataset"])))
        raise BenchError(f"reference {name!r} has no dataset {dataset!r}; it has {have}")
    return name, dataset or None


def beside_frame(wide: pd.DataFrame, reference: str, dataset: str | None = None) -> pd.DataFrame:
    """One row per (dataset, defense) of `wide` (views.leaderboard.wide_frame, seeds pooled) that the reference
    lists for `dataset` (default: the row's own dataset name): `clean: paper`, `clean: ours`, then per reference
    column `COL: paper [Table]`, `COL: ours` and, where recorded, `adaptive-COL: ours` and its worst case."""
    from varmixup_bench.views.leaderboard import WORST_SUFFIX, _cell, _column, reference_table, reference_text

    ref = reference_table(reference)
    rows, columns = [], {"defense": None}
    for _, row in _headline_rows(wide).iterrows():
        name = str(row["defense"]).split(" [")[0]
        mine = ref[(ref["dataset"] == (dataset or row["dataset"])) & (ref["defense"] == name)]
        if mine.empty:
            continue
        # one variant per defense (_headline_rows), under the wide table's label: it says what tells the variant
        # from the others ("[bandwidth=128, latent_dim=64, vae_arch=flat]": the flat VAE); a label that already
        # says lambda_mi (one defense at several) needs no second statement of it
        out = {"defense": row["defense"] + ("" if "lambda_mi=" in str(row["defense"]) else _lambda_mi(row))}
        clean = mine.dropna(subset=["clean_acc"])
        if not clean.empty:
            c = clean.iloc[0]
            out[f"clean: {reference} [{c['table']}]"] = reference_text(c["clean_acc"], c["clean_acc_std"])
        out["clean: ours"] = _cell(row.get("clean"))
        for r in mine.itertuples():
            col = _column(r.attack, float(r.eps))
            out[f"{col}: {reference} [{r.table}]"] = reference_text(r.robust_acc, r.robust_acc_std)
            out[f"{col}: ours"] = _ours(row, col, _cell)
            for extra in (f"adaptive-{col}", f"adaptive-{col} {WORST_SUFFIX}"):
                text = _ours(row, extra, _cell)
                if text:
                    out[f"{extra}: ours"] = text
        rows.append(out)
        columns.update(dict.fromkeys(out))
    if not rows:
        return pd.DataFrame()
    # each reference column beside ours: a later row's adaptive column goes after the same attack's, not last
    order = list(columns)
    adaptive = [c for c in order if c.startswith("adaptive-")]
    for col in sorted(adaptive, key=lambda c: WORST_SUFFIX in c):  # each mean before its worst case
        order.remove(col)
        anchor = (col.replace(f" {WORST_SUFFIX}", "") if WORST_SUFFIX in col
                  else col.removeprefix("adaptive-"))  # the worst case after its mean, the mean after ours
        order.insert(order.index(anchor) + 1 if anchor in order else len(order), col)
    return pd.DataFrame(rows, columns=order).fillna("")


def _ours(row: pd.Series, col: str, cell) -> str:
    """Our cell of the wide table's column `col` in this row, or, where the wide table split the column because
    some results were evaluated differently (`pgd10 ε=8/255 (n_examples=200)`), this row's cells of it, each
    saying what differs ("" where the row has none): a split column elsewhere on the page must not blank ours."""
    from varmixup_bench.views.leaderboard import WORST_SUFFIX

    if isinstance(row.get(col), dict):
        return cell(row.get(col))
    worst = col.endswith(f" {WORST_SUFFIX}")
    base = col.removesuffix(f" {WORST_SUFFIX}")
    parts = []
    for name, v in row.items():
        name = str(name)
        if not (isinstance(v, dict) and name.startswith(f"{base} (") and name.endswith(f" {WORST_SUFFIX}") == worst):
            continue
        what = name.removesuffix(f" {WORST_SUFFIX}")[len(base) + 2:].removesuffix(")")
        parts.append(f"{cell(v)} ({what})")
    return "; ".join(parts)


def _headline_rows(wide: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, defense) one row: where a defense has variants (another eta, lambda_MI, VAE), the one with the
    most measured cells (in a campaign its main setting; the headline shows every variant as a row of its own)
    beside the reference's default-setting numbers, never all of them."""
    measured = wide.apply(lambda r: sum(isinstance(v, dict) for v in r.values), axis=1)
    base = wide["defense"].astype(str).str.split(" [", regex=False).str[0]
    keep = (wide.assign(_base=base, _n=measured).sort_values("_n", ascending=False, kind="stable")
            .drop_duplicates(["dataset", "_base"]).index)
    return wide.loc[sorted(keep)]


def _lambda_mi(row: pd.Series) -> str:
    """` (λ_MI = x)` for a row whose predictor mixes with a lambda_MI (ours may differ from the reference's)."""
    from varmixup_bench.results.record import field_value

    for v in row.values:
        rec = v.get("rec") if isinstance(v, dict) else None
        cfg = field_value(rec.get("inference_config")) if rec is not None else None
        if isinstance(cfg, dict) and cfg.get("lambda_mi") is not None:
            return f" (λ_MI = {float(cfg['lambda_mi']):g})"
    return ""


LEGEND = ("The reference's numbers as transcribed (mean ± the standard deviation it reports, where it reports one); "
          "ours: accuracy % of the defended predictor [95 % interval] on this page's test images, ×S the mean of S "
          "training seeds; `adaptive-…: ours` the adaptive attack of the same budget through the defense's "
          "randomness (EOT) and its worst case over draws. A column names the attack and radius only: the "
          "reference's regime (network, training, the attack's step, what its ± is over) differs from ours")

# the settings a regime table sets side by side: (row, Preset field or a function of the preset)
REGIME_ROWS = (
    ("network", lambda p: p.model),
    ("optimizer, learning rate", lambda p: f"{p.optimizer}, {p.lr:g}"),
    ("epochs (per recipe)", lambda p: _span([*p.epochs.values(), p.epochs_default])),
    ("label smoothing", lambda p: f"{p.label_smoothing:g}"),
    ("PGD step of the evaluation at ε = 8/255", lambda p: _step_text(p)),
    ("PGD steps of adversarial training", lambda p: f"{p.train_steps}"),
    ("trials per evaluation", lambda p: f"{p.trials}"),
    ("test images", lambda p: "all" if p.test_subset is None else f"{p.test_subset} (stratified)"),
)


def _span(values) -> str:
    vals = sorted({int(v) for v in values if v is not None})
    return f"{vals[0]}–{vals[-1]}" if len(vals) > 1 else str(vals[0]) if vals else "–"


def _step_text(p) -> str:
    from varmixup_bench.results.record import eps_label

    return eps_label(p.step if p.step is not None else (8 / 255) / 4)


def regime_table(reference: str, ours) -> str:
    """Markdown: the reference's preset (the preset of the reference's name, where one exists: `paper`) beside
    `ours` (a Preset), row by row (REGIME_ROWS); "" where the reference has no preset."""
    from varmixup_bench.config.presets import PRESETS

    if reference not in PRESETS.names():
        return ""
    theirs = PRESETS.get(reference)
    lines = [f"| setting | reference (`{reference}` preset) | ours (`{ours.name}` preset) |", "| --- | --- | --- |"]
    lines += [f"| {label} | {get(theirs)} | {get(ours)} |" for label, get in REGIME_ROWS]
    return "\n".join(lines)


def render_beside(wide: pd.DataFrame, reference: str, dataset: str | None = None, ours=None) -> str:
    """The beside table, its legend, and where the reference has a preset and `ours` (the page's Preset) is given,
    the two regimes side by side (regime_table): a column's name says the attack and radius, not its step."""
    frame = beside_frame(wide, reference, dataset)
    if frame.empty:
        return f"(no defense of this page is in the reference `{reference}`)\n"
    regime = regime_table(reference, ours) if ours is not None else ""
    legend = LEGEND + (", as the table below sets out; the paired tests are in the claims." if regime
                       else "; the paired tests are in the claims.")
    return (frame.to_markdown(index=False, disable_numparse=True) + f"\n\n{legend}\n"
            + (f"\n{regime}\n" if regime else ""))
