"""Leaderboards are views of the result records: one row per (dataset, defense, attack, threat model, eps)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from varmixup_bench.core.errors import BenchError
from varmixup_bench.results.record import (COLUMNS, ROW_KEY, TRAINING_FIELDS, VARIANT_KEY, _without_seeds,  # noqa: F401
                                          differing_fields, eps_label, eps_text, field_value, inference_key,
                                          model_signature, predictor_key, record_norm, record_norms)
from varmixup_bench.results.seeds import pool_seeds
from varmixup_bench.results.stats import (FAMILY_ALPHA, TRIAL_INTERVAL_NOTE, compare_records, format_interval, holm,
                                         interval_from_summary, levels_note, metric_figure, metric_text,
                                         value_interval)
from varmixup_bench.views.diagnostics import diagnose, flag_frame, same_step
from varmixup_bench.views.htmlpage import _code, page

# the record's schema (ROW_KEY, VARIANT_KEY, COLUMNS, TRAINING_FIELDS) lives in results.record; re-exported here
FORMATS = ("csv", "md", "json", "html")


def _json(v):
    """Nested fields as canonical JSON text (sorted keys), scalars unchanged."""
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, separators=(",", ":"), default=str)
    return v


def with_intervals(df: pd.DataFrame) -> pd.DataFrame:
    """Fill missing *_ci_low/high (records written before intervals existed) from mean, std, trials and n."""
    out = df.copy()
    for which in ("clean", "robust"):
        lo, hi = f"{which}_acc_ci_low", f"{which}_acc_ci_high"
        for col in (lo, hi):
            if col not in out:
                out[col] = np.nan
        missing = out[lo].isna() & out[f"{which}_acc"].notna()
        for i in out.index[missing]:
            r = out.loc[i]
            std = float(r[f"{which}_acc_std"]) if pd.notna(r[f"{which}_acc_std"]) else 0.0
            out.at[i, lo], out.at[i, hi] = interval_from_summary(float(r[f"{which}_acc"]), std,
                                                                 int(r["trials"] or 1), int(r["n_examples"] or 1))
    return out


def leaderboard_frame(records: list[dict[str, Any]], dataset: str | None = None,
                      alpha: float = FAMILY_ALPHA) -> pd.DataFrame:
    """The latest record per result (ROW_KEY plus VARIANT_KEY: records that differ in step, n, preset, training
    or attack settings are different results and stay apart), sorted; accuracies in percent, 95 % intervals;
    `flags`: diagnose's findings at family-wise `alpha` (the command's share: stats.family_share)."""
    return flagged_frame(records, dataset, alpha)[0]


def flagged_frame(records: list[dict[str, Any]], dataset: str | None = None,
                  alpha: float = FAMILY_ALPHA) -> tuple[pd.DataFrame, list]:
    """leaderboard_frame and the diagnose findings its `flags` name, decided once: a command that shows both
    (the headline's and the wide table's ⚠, a page's flags section) hands them on instead of deciding them again."""
    df = _record_frame(records, dataset)
    if df.empty:
        return pd.DataFrame(columns=COLUMNS + ["flags"]), []
    findings = diagnose(df, alpha)
    return flag_frame(df, alpha, findings), findings


def _record_frame(records: list[dict[str, Any]], dataset: str | None) -> pd.DataFrame:
    """leaderboard_frame before its flags."""
    df = pd.DataFrame(records, columns=list(dict.fromkeys(COLUMNS + [c for r in records for c in r])))
    if dataset is not None:
        df = df[df["dataset"] == dataset]
    if df.empty:
        return df
    df["norm"] = record_norms(df)
    df["attack_config_key"] = df["attack_config"].map(lambda v: _json(v) if isinstance(v, dict) else "")
    df["inference_key"] = df["inference_config"].map(inference_key) if "inference_config" in df else ""
    # an evaluation without a radius has no step: older ECE and corruption records say 0.0, newer ones nothing
    df.loc[pd.to_numeric(df["eps"], errors="coerce").fillna(0.0) == 0.0, "step"] = None
    for col in VARIANT_KEY:
        df[col] = df[col].astype(object).where(df[col].notna(), "")
    df = df.sort_values("timestamp", kind="stable").drop_duplicates(subset=ROW_KEY + VARIANT_KEY + ["inference_key"],
                                                                    keep="last")
    df["versions"] = df["versions"].map(
        lambda v: ";".join(f"{k}={val}" for k, val in sorted(v.items())) if isinstance(v, dict) else v
    )
    extra = [c for c in df.columns if c not in COLUMNS and c not in ("attack_config_key", "inference_key")]
    df = df[COLUMNS + extra].sort_values(["dataset", "defense", "attack", "threat_model", "norm", "eps"], kind="stable")
    df = with_intervals(df.reset_index(drop=True))
    df["step"] = df["step"].map(lambda v: np.nan if v == "" or v is None else float(v))
    for col in ("n_examples", "trials"):
        df[col] = df[col].map(lambda v: v if v != "" else np.nan)
    return df


def _step_label(v) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else eps_label(float(v))


def _interval_text(df: pd.DataFrame, which: str) -> list[str]:
    return [format_interval(m, lo, hi) for m, lo, hi in
            zip(df[f"{which}_acc"], df[f"{which}_acc_ci_low"], df[f"{which}_acc_ci_high"])]


def _value_text(df: pd.DataFrame) -> list[str]:
    """Each metric record's value in its unit with its 95 % interval (stats.value_interval); "" for the others."""
    if "metric" not in df or "value" not in df:
        return [""] * len(df)
    out = []
    for rec in df.to_dict("records"):
        metric = rec.get("metric")
        if not isinstance(metric, str) or not metric or pd.isna(rec.get("value")):
            out.append("")
            continue
        out.append(metric_text(float(rec["value"]), METRIC_UNITS.get(metric, metric), value_interval(rec)))
    return out


def render(df: pd.DataFrame, fmt: str, alpha: float = FAMILY_ALPHA) -> str:
    """The long view: every field in csv/json (nested ones as canonical JSON), a readable table in md (its `flags`
    decided at family-wise `alpha`, the level leaderboard_frame was given, said under it)."""
    if fmt in ("csv", "json"):
        flat = df.copy()
        for col in flat.columns:
            flat[col] = flat[col].map(_json)
        if fmt == "csv":
            return flat.to_csv(index=False)
        return json.dumps(flat.to_dict(orient="records"), indent=2, default=str) + "\n"
    if fmt == "md":
        view = df[["dataset", "defense", "attack", "threat_model", "eps", "step", "clean_acc", "robust_acc",
                   "trials", "n_examples", "flags"]].copy()
        view["eps"] = [eps_text(e, n) for e, n in zip(df["eps"], df["norm"])]
        view["step"] = view["step"].map(_step_label)
        view["clean_acc"] = _interval_text(df, "clean")
        view["robust_acc"] = _interval_text(df, "robust")
        view["flags"] = view["flags"].map(lambda f: f"⚠ {f}" if f else "")
        view.columns = ["dataset", "defense", "attack", "threat model", "ε", "step", "clean acc (%) [95 % CI]",
                        "robust acc (%) [95 % CI]", "trials", "n", "flags"]
        metrics = _value_text(df)
        if any(metrics):  # ECE, γ, KID, PSNR: the value a metric record measured (its robust acc is its clean acc)
            view.insert(8, "value (unit) [95 % CI]", metrics)
        return (view.to_markdown(index=False, disable_numparse=True) + f"\n\n{TRIAL_INTERVAL_NOTE}. flags: `bench "
                f"diagnose`'s findings. {levels_note(alpha)}\n")
    raise BenchError(f"unknown leaderboard format {fmt!r}; valid formats: {', '.join(FORMATS)}")


# ---- the wide view: rows (dataset, defense), columns attacks; the paper's numbers beside ours ----

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"  # package data, installed with the package
_THREAT_MARK = {"oblivious": "ᵒ", "adaptive": "ᵃ", "black-box": "ᵇ", "white-box": "", "none": ""}


def reference_text(value, std=None) -> str:
    """A transcribed reference number as its source reports it: the mean, ± its standard deviation where given."""
    return "–" if pd.isna(value) else f"{value:g}" + (f" ± {std:g}" if std is not None and pd.notna(std) else "")


def reference_table(name: str) -> pd.DataFrame:
    """A transcribed reference (e.g. `paper`: Tables 2 and 4 of the VarMixup paper) from the package's views/reference/."""
    path = REFERENCE_DIR / f"{name}.csv"
    if not path.exists():
        valid = sorted(p.stem for p in REFERENCE_DIR.glob("*.csv"))
        raise BenchError(f"unknown reference {name!r}; valid references: {', '.join(valid)}")
    return pd.read_csv(path, dtype={"robust_acc": float, "robust_acc_std": float, "clean_acc": float})


def _column(attack: str, eps: float, norm: str | None = None) -> str:
    """`pgd10 ε=8/255` (L-inf), `pgd10 L2 ε=0.5`; attacks without a radius by name."""
    if attack in ("clean", "corruptions", "ece") or eps == 0:
        return attack
    return f"{attack} L2 ε={eps:.4g}" if norm == "L2" else f"{attack} ε={eps_label(eps)}"


# wide columns in this order (clean first, white-box before adaptive before black-box); others after, as met
_COLUMN_ORDER = ("clean", "pgd10", "pgd50", "tpgd10", "fgsm", "adaptive-pgd10", "adaptive-pgd50", "adaptive-apgd",
                 "surrogate-pgd50", "autoattack", "spsa", "transfer", "corruptions", "ECE (%)", "linearity")
# the unit a metric record's value is shown in (its wide column says it); a metric not listed shows its name
METRIC_UNITS = {"ece_percent": "%", "local_linearity": "γ", "kid_x1000": "KID ×1000", "psnr_db": "dB"}
WORST_SUFFIX = "worst-case"  # wide column of the worst case over R draws of a randomised defense


def _column_rank(col: str) -> int:
    if col in _COLUMN_ORDER:
        return _COLUMN_ORDER.index(col)
    if col.startswith("ECE (%) "):  # ECE told apart from another ECE result of its row (wide_frame)
        return _COLUMN_ORDER.index("ECE (%)")
    name = col.split(" ε=")[0].split(" L2")[0].split(" (")[0].split("(")[0].split(":")[0]
    name = name.removesuffix(f" {WORST_SUFFIX}")
    return _COLUMN_ORDER.index(name) if name in _COLUMN_ORDER else len(_COLUMN_ORDER)


def _row_labels(df: pd.DataFrame) -> list[str]:
    """The defense name, plus what differs when one defense was trained or evaluated in several ways (epochs,
    preset, subsets): such rows are never merged."""
    labels = list(df["defense"])
    for (_, _), g in df.groupby(["dataset", "defense"], sort=False):
        # one row per way of training, whatever the seed: several training seeds are one row (varmixup_bench.results.seeds)
        # the data too (results.seeds pools only seeds on the same data): two versions of a dataset are two rows
        sigs = pd.Series([f"{model_signature(r)}|{r['preset']}|{r.get('data_fingerprint')}" for _, r in g.iterrows()],
                         index=g.index)
        if sigs.nunique() <= 1:
            continue
        firsts = {sig: g.loc[i] for i, sig in sigs.items()}
        reps = [dict(r) for r in firsts.values()]
        for r in reps:
            ov = r.get("train_overrides")
            ov = field_value(ov)
            r["train_overrides"] = {k: v for k, v in ov.items() if k in TRAINING_FIELDS} if isinstance(ov, dict) else ov
            r["inference_config"] = _without_seeds(field_value(r.get("inference_config")))
        diffs = differing_fields(reps, ["train_config", "train_overrides", "preset", "inference_config",
                                        "data_fingerprint"])
        names = {sig: f"{r['defense']} [{d or 'model ' + str(r['config_hash'])[:8]}]"
                 for sig, r, d in zip(firsts, firsts.values(), diffs)}
        for i, sig in sigs.items():
            labels[df.index.get_loc(i)] = names[sig]
    return labels


def _column_labels(df: pd.DataFrame) -> list[str]:
    """attack ε=…; plus step / n / settings when one column holds results evaluated differently."""
    norms = df["norm"] if "norm" in df else [None] * len(df)
    base = [_column(a, e, n) for a, e, n in zip(df["attack"], df["eps"], norms)]
    labels = list(base)
    frame = df.assign(_col=base)
    for col, g in frame.groupby("_col", sort=False):
        sig = g[["step", "n_examples", "attack_config"]].apply(lambda r: "|".join(map(str, r)), axis=1)
        if sig.nunique() <= 1:
            continue
        rows = [dict(r) for _, r in g.iterrows()]
        for i, d in zip(g.index, differing_fields(rows, ["step", "n_examples", "attack_config"])):
            labels[df.index.get_loc(i)] = f"{col} ({d})" if d else col
    return labels


# what can still tell two results of one row and column apart once step, subset and attack settings agree
APART_FIELDS = ["trials", "draws", "seed", "seeds", "threat_model"]


def _apart(df: pd.DataFrame, row_labels: list[str], col_labels: list[str]) -> list[str]:
    """The column labels with every row's cells kept apart: where one row would get two results under one label
    (another trial count or number of draws: seeds that did not pool), each says what differs, instead of the
    later one taking the cell unseen (the row's mean and worst-case columns could then come from different
    models)."""
    out = list(col_labels)
    seen: dict[tuple, list[int]] = {}
    for i, (ds, row, col) in enumerate(zip(df["dataset"], row_labels, col_labels)):
        if df.iloc[i]["attack"] != "clean":
            seen.setdefault((ds, row, col), []).append(i)
    for (_, _, col), idx in seen.items():
        if len(idx) < 2:
            continue
        recs = [df.iloc[i].to_dict() for i in idx]
        for k, (i, d) in enumerate(zip(idx, differing_fields(recs, APART_FIELDS))):
            out[i] = f"{col} ({d or f'#{k + 1}'})"
    return out


def wide_frame(df: pd.DataFrame, reference: str | None = None, reference_dataset: str | None = None,
               alpha: float = FAMILY_ALPHA, findings: list | None = None) -> pd.DataFrame:
    """One row per (dataset, defense as trained): clean accuracy, then one column per attack and eps, each cell
    a dict (mean, 95 % interval, threat mark, and the record for significance tests); ECE rows show the
    calibration error and other metrics (local linearity, KID, a VAE's PSNR) their value and its 95 % interval
    where the record keeps what makes one (stats.value_interval), never ranked. With a reference, its
    numbers follow in `paper:` columns. `alpha`: the family-wise level of its diagnose findings and of its bold
    marks (each a family; stats.family_share), kept in `attrs`; `findings`: diagnose's on `df` at `alpha` where
    the caller has them (flagged_frame), else decided here."""
    if findings is None:  # on each trained model, before its seeds are pooled
        findings = diagnose(df, alpha) if not df.empty else []
    df = pool_seeds(df).reset_index(drop=True)  # several training seeds: one cell, mean and widened interval
    row_labels = _row_labels(df)
    col_labels = _apart(df, row_labels, _column_labels(df))
    rows: dict[tuple, dict] = {}
    for i, r in enumerate(df.itertuples()):
        rec = df.iloc[i].to_dict()
        row = rows.setdefault((r.dataset, row_labels[i]), {"dataset": r.dataset, "defense": row_labels[i]})
        seeds = int(rec.get("seeds", 1) or 1)
        clean = {"mean": r.clean_acc, "lo": r.clean_acc_ci_low, "hi": r.clean_acc_ci_high, "mark": "",
                 "rec": rec, "which": "clean", "seeds": seeds}
        metric = rec.get("metric")
        if r.attack == "clean":
            row["clean"] = clean
        elif isinstance(metric, str) and metric:  # ECE, local linearity, KID, VAE PSNR: the value, not an accuracy
            # ECE's column keeps what _column_labels / _apart added ("ece (n=500)"): two ECE results of one row
            # under one "ECE (%)" would show the later only
            label = (f"ECE (%){col_labels[i].removeprefix('ece')}" if r.attack == "ece"
                     else f"{col_labels[i]} ({METRIC_UNITS.get(metric, metric)})")
            lo, hi = value_interval(rec) or (None, None)  # not ranked (no rec): lower is better for some
            row[label] = {"mean": r.value, "lo": lo, "hi": hi, "mark": "", "rec": None, "which": "value",
                          "seeds": seeds}
        else:
            row[col_labels[i]] = {"mean": r.robust_acc, "lo": r.robust_acc_ci_low, "hi": r.robust_acc_ci_high,
                                  "mark": _THREAT_MARK.get(r.threat_model, ""), "rec": rec, "which": "robust",
                                  "seeds": seeds}
            if rec.get("stochastic") is True and pd.notna(rec.get("robust_acc_worst")) and _draws(rec) > 1:
                # a randomised defense: the fraction of images classified correctly in every one of R draws (with
                # R = 1, e.g. `--set worst_case_draws=1` on secondary columns, it is the mean column again)
                row[f"{col_labels[i]} {WORST_SUFFIX}"] = {
                    "mean": rec["robust_acc_worst"], "lo": rec["robust_acc_worst_ci_low"],
                    "hi": rec["robust_acc_worst_ci_high"], "mark": _THREAT_MARK.get(r.threat_model, ""),
                    "rec": rec, "which": "worst", "seeds": seeds}
            row.setdefault("clean", clean)
    out = pd.DataFrame(list(rows.values()))
    measured = sorted((c for c in out.columns if c not in ("dataset", "defense")), key=_column_rank)
    out = out[["dataset", "defense", *measured]] if not out.empty else out
    if reference and not out.empty:
        ref = reference_table(reference)
        for key, row in rows.items():
            ds = reference_dataset or row["dataset"]
            name = str(row["defense"]).split(" [")[0]
            for r in ref[(ref["dataset"] == ds) & (ref["defense"] == name)].itertuples():
                col = f"{reference}: {_column(r.attack, r.eps)} [{r.table}]"
                where = (out["dataset"] == key[0]) & (out["defense"] == key[1])
                out.loc[where, col] = reference_text(r.robust_acc, r.robust_acc_std)
                if pd.notna(r.clean_acc):
                    out.loc[where, f"{reference}: clean [{r.table}]"] = reference_text(r.clean_acc)
    out.attrs["findings"] = findings  # render_wide marks the cells they concern (cell_flags)
    out.attrs["alpha"] = alpha  # best_cells decides the bold marks at it
    return out


def _draws(rec: dict) -> int:
    """R, the draws that classified each adversarial example (a record older than the field, or of a
    deterministic predictor: 1)."""
    try:
        r = int(float(rec.get("draws")))
    except (TypeError, ValueError):
        return 1
    return max(r, 1)


def _cell(v) -> str:
    if isinstance(v, dict):
        seeds = f" ×{v['seeds']}" if v.get("seeds", 1) > 1 else ""  # the mean of this many training seeds
        if v.get("which") == "value":  # a metric's value: two decimals, tiny ones three digits (γ)
            known = v["lo"] is not None and not pd.isna(v["lo"])
            ci = f" [{metric_figure(v['lo'])}, {metric_figure(v['hi'])}]" if known else ""
            return f"{metric_figure(v['mean'])}{ci}{v['mark']}{seeds}"
        return f"{format_interval(v['mean'], v['lo'], v['hi'])}{v['mark']}{seeds}"
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def best_p_value(best: dict, runner_up: dict) -> float:
    """Two-sided p value of "the best cell differs from the runner-up", for the best above it (1 otherwise; NaN
    when either has no record to test): paired on the same images (McNemar / paired z) when both records carry
    per-image results, else the unpaired z test, widened by the seeds' spread for means over training seeds
    (stats.compare_records). Two-sided although the direction is known: it was chosen by looking."""
    a, b = best.get("rec"), runner_up.get("rec")
    if a is None or b is None or best["lo"] is None:
        return float("nan")
    cmp = compare_records(a, b, (best["which"], runner_up["which"]))
    return cmp.p if cmp.diff > 0 else 1.0


def best_is_significant(best: dict, runner_up: dict) -> bool:
    """Whether the best cell is significantly above the runner-up on its own (p < 0.05, best_p_value); a table's
    bold marks correct for all its comparisons together (best_cells)."""
    return best_p_value(best, runner_up) < 0.05


def above_every_other(best, others: list, p_value) -> float:
    """The p value of "best is above every other cell": the largest of its tests against each (an
    intersection–union test, valid at its level with no correction within the column). The runner-up alone was
    not enough: a row on 40 images just below it can be as good as the best within noise. NaN (a pair with
    nothing to compare) counts as no evidence."""
    ps = [p_value(best, o) for o in others]
    return max((p if p == p else 1.0 for p in ps), default=1.0)


def best_cells(wide: pd.DataFrame) -> set[tuple[int, str]]:
    """(row position, column) of each cell that is best in its column among its dataset's rows and significantly
    above every other row there (above_every_other), Holm–Bonferroni over those tests of every column and
    dataset of the table (one family, at the family-wise level wide_frame kept, 5 % by default), so that one table of many
    columns does not bold a gap within noise by chance. Cells of different datasets are never compared. A
    metric's value (ECE, γ: lower is better) is never marked. An oblivious cell (ᵒ: an attack on a randomised
    rule's classifier alone) is not ranked: it is no robustness of the defended predictor, and the page flags it as overstating, so a best
    mark on it would crown the number the page warns about."""
    tests = []
    datasets = wide["dataset"].tolist() if "dataset" in wide else [None] * len(wide)
    for col in wide.columns:
        for dataset in dict.fromkeys(datasets):
            cells = [(i, v) for i, v in enumerate(wide[col]) if datasets[i] == dataset
                     and isinstance(v, dict) and v.get("rec") is not None
                     and v["rec"].get("threat_model") != "oblivious"]
            if len(cells) < 2:
                continue
            ranked = sorted(cells, key=lambda t: -float(t[1]["mean"]))
            p = above_every_other(ranked[0][1], [c for _, c in ranked[1:]], best_p_value)
            tests.append((ranked[0][0], col, p))
    alpha = float(wide.attrs.get("alpha", FAMILY_ALPHA))
    return {(i, col) for (i, col, _), reject in zip(tests, holm([p for *_, p in tests], alpha)) if reject}


def _predictors(rec: dict) -> list[str]:
    """The predictor keys (results.record.predictor_key) of a wide cell's record: one per model pooled into it."""
    return [predictor_key(h, rec.get("inference_config")) for h in str(rec.get("config_hash")).split(",")]


def cell_flags(wide: pd.DataFrame) -> tuple[dict[tuple[int, str], list[int]], list[tuple[int, str]]]:
    """The diagnostic findings of a wide table (wide_frame keeps them in `attrs`): {(row position, column):
    footnote numbers} beside the cells each finding concerns (its attacks at its eps, on its model, in its norm;
    the defense's name where no cell is), and the footnotes (number, 'check (dataset, defense, seed): why')."""
    marks: dict[tuple[int, str], list[int]] = {}
    notes = []
    for k, f in enumerate(wide.attrs.get("findings", []), start=1):
        hit = False
        for i in range(len(wide)):
            for col in wide.columns:
                v = wide.iloc[i][col]
                rec = v.get("rec") if isinstance(v, dict) else None
                if rec is None or v["which"] not in ("robust", "clean") or rec.get("dataset") != f.dataset:
                    continue
                if v["which"] == "clean" and rec.get("attack") != "clean":
                    continue
                if (rec.get("defense") != f.defense or f.model not in _predictors(rec)
                        or rec.get("norm", "Linf") != f.norm):
                    continue
                # the finding's record by attack, eps and step (PGD-10 at two steps at one eps are two cells)
                if any(a == rec.get("attack") and abs(float(e) - float(rec.get("eps"))) < 1e-9
                       and same_step(step, rec.get("step")) for a, e, step in f.stepped_rows()):
                    marks.setdefault((i, col), []).append(k)
                    hit = True
        if not hit:  # the row of its model
            rows = [i for i in range(len(wide)) if wide.iloc[i]["dataset"] == f.dataset and any(
                isinstance(v, dict) and v.get("rec") is not None and v["rec"].get("defense") == f.defense
                and f.model in _predictors(v["rec"]) for v in wide.iloc[i])]
            for i in rows[:1]:
                marks.setdefault((i, "defense"), []).append(k)
        seed = f", seed {f.seed}" if f.seed else ""
        notes.append((k, f"{f.check} ({f.dataset}, {f.defense}{seed}): {f.message}"))
    return marks, notes


LEGEND = ("accuracy % of the defended predictor [95 % interval]; " + TRIAL_INTERVAL_NOTE.split(": ", 1)[1]
          + "; ᵒ oblivious, ᵃ adaptive, ᵇ black-box; `worst-case` columns (randomised defenses): the share of images "
          "classified correctly in every one of R fresh draws; ×S: the mean of S training seeds evaluated on the same "
          "images, its interval widened by t(S-1)·s/√S of the seed spread; a metric's column (ECE %, γ, KID, PSNR): its "
          "value [95 % interval] (ECE: ±1.96 bootstrap SDs over the images; γ: ±1.96 standard errors of the images' "
          "values; KID: of its samples' U statistic), never ranked; bold: significantly above every other row in its column (the largest p of the paired "
          "McNemar / paired z test on the same images where both cells have per-image results, otherwise an unpaired "
          "z test; a ×S cell's test is widened by its seeds' spread, paired by seed where both cells hold the same "
          "seeds), Holm–Bonferroni over the comparisons of every column of the table at the family-wise level below; no bold "
          "where the best is within noise; ᵒ cells are not ranked (they attack the classifier, not the defended predictor); ⚠k: a finding of `bench diagnose` about that cell, its reason below")


def render_wide(wide: pd.DataFrame, fmt: str, plots=()) -> str:
    """Markdown (significant best per column in bold, ⚠ and footnotes for diagnostic findings), HTML (one sortable
    page, plots embedded), CSV or JSON."""
    import html

    if wide.empty:
        return "(no results)\n"
    best = best_cells(wide)
    levels = levels_note(float(wide.attrs.get("alpha", FAMILY_ALPHA)))
    marks, notes = cell_flags(wide) if fmt in ("md", "html") else ({}, [])
    text = wide.copy()
    for col in wide.columns:
        cells = []
        for i, v in enumerate(wide[col]):
            c = html.escape(_cell(v)) if fmt == "html" else _cell(v)
            if (i, col) in best:
                c = f"**{c}**" if fmt == "md" else f"<b>{c}</b>" if fmt == "html" else c
            if (i, col) in marks:
                c += (" ⚠" + ",".join(map(str, marks[(i, col)])) if fmt == "md" else "".join(
                    f' <a class="flag" href="#fn{k}">⚠{k}</a>' for k in marks[(i, col)]))
            cells.append(c)
        text[col] = cells
    if fmt == "md":
        foot = "".join(f"⚠{k} {t}  \n" for k, t in notes)
        table = text.to_markdown(index=False, disable_numparse=True)
        return table + (f"\n\n{foot}" if foot else "") + f"\n\n{LEGEND}. {levels}\n"
    if fmt == "csv":
        return text.to_csv(index=False)
    if fmt == "json":
        return json.dumps(text.to_dict(orient="records"), indent=2) + "\n"
    return _html_page(text, f"{LEGEND}. {levels}", notes, plots)


def _html_page(text: pd.DataFrame, legend: str, notes=(), plots=()) -> str:
    table = text.to_html(index=False, escape=False, table_id="lb", classes="sortable", border=0)
    foot = ('<ol class="notes">' + "".join(f'<li id="fn{k}" value="{k}">⚠{k} {_code(t)}</li>' for k, t in notes)
            + "</ol>") if notes else ""
    return page("varmixup-bench leaderboard (wide)", table + foot, legend + ".", plots)
