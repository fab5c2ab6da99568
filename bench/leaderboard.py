"""Leaderboards are views of the result records: one row per (dataset, defense, attack, threat model, eps)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import BenchError

ROW_KEY = ["dataset", "defense", "attack", "threat_model", "eps"]
COLUMNS = [
    "dataset", "defense", "attack", "threat_model", "eps", "step", "clean_acc", "clean_acc_std", "robust_acc",
    "robust_acc_std", "target_hit_rate", "metric", "value", "trials", "n_examples", "seconds", "seed", "model", "preset", "device", "config_hash",
    "eval_hash", "inference_config", "timestamp", "versions",
]
FORMATS = ("csv", "md", "json", "html")


def leaderboard_frame(records: list[dict[str, Any]], dataset: str | None = None) -> pd.DataFrame:
    """The latest record per row key, sorted by dataset, defense, attack, eps; accuracies in percent."""
    df = pd.DataFrame(records, columns=list(dict.fromkeys(COLUMNS + [c for r in records for c in r])))
    if dataset is not None:
        df = df[df["dataset"] == dataset]
    if df.empty:
        return pd.DataFrame(columns=COLUMNS + ["flags"])
    df = df.sort_values("timestamp", kind="stable").drop_duplicates(subset=ROW_KEY, keep="last")
    df["versions"] = df["versions"].map(
        lambda v: ";".join(f"{k}={val}" for k, val in sorted(v.items())) if isinstance(v, dict) else v
    )
    df = df[COLUMNS].sort_values(["dataset", "defense", "attack", "threat_model", "eps"]).reset_index(drop=True)
    from bench.diagnostics import flag_frame

    return flag_frame(df)


def eps_label(eps: float) -> str:
    """8/255 when eps is a whole number of 255ths, else the decimal."""
    scaled = eps * 255
    if abs(scaled - round(scaled)) < 1e-3:
        return "0" if round(scaled) == 0 else f"{round(scaled)}/255"
    return f"{eps:.4g}"


def render(df: pd.DataFrame, fmt: str) -> str:
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        return json.dumps(df.to_dict(orient="records"), indent=2, default=str) + "\n"
    if fmt == "md":
        view = df[["dataset", "defense", "attack", "threat_model", "eps", "step", "clean_acc", "robust_acc",
                   "trials", "n_examples", "flags"]].copy()
        view["eps"] = view["eps"].map(eps_label)
        view["step"] = view["step"].map(eps_label)
        view["clean_acc"] = [f"{m:.2f} ± {s:.2f}" for m, s in zip(df["clean_acc"], df["clean_acc_std"])]
        view["robust_acc"] = [f"{m:.2f} ± {s:.2f}" for m, s in zip(df["robust_acc"], df["robust_acc_std"])]
        view["flags"] = view["flags"].map(lambda f: f"⚠ {f}" if f else "")
        view.columns = ["dataset", "defense", "attack", "threat model", "ε", "step", "clean acc (%)",
                        "robust acc (%)", "trials", "n", "flags"]
        return view.to_markdown(index=False, disable_numparse=True) + "\n"
    raise BenchError(f"unknown leaderboard format {fmt!r}; valid formats: {', '.join(FORMATS)}")


# ---- the wide view: rows (dataset, defense), columns attacks; the paper's numbers beside ours ----

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "leaderboards" / "reference"
_THREAT_MARK = {"oblivious": "ᵒ", "adaptive": "ᵃ", "black-box": "ᵇ", "white-box": "", "none": ""}


def reference_table(name: str) -> pd.DataFrame:
    """A transcribed reference (e.g. `paper`: Tables 2 and 4 of the VarMixup paper) from leaderboards/reference/."""
    path = REFERENCE_DIR / f"{name}.csv"
    if not path.exists():
        valid = sorted(p.stem for p in REFERENCE_DIR.glob("*.csv"))
        raise BenchError(f"unknown reference {name!r}; valid references: {', '.join(valid)}")
    return pd.read_csv(path, dtype={"robust_acc": float, "robust_acc_std": float, "clean_acc": float})


def _column(attack: str, eps: float) -> str:
    return attack if attack in ("clean", "corruptions", "ece") or eps == 0 else f"{attack} ε={eps_label(eps)}"


# wide columns in this order (clean first, white-box before adaptive before black-box); others after, as met
_COLUMN_ORDER = ("clean", "pgd10", "pgd50", "tpgd10", "fgsm", "adaptive-pgd10", "adaptive-pgd50", "spsa",
                 "autoattack", "corruptions", "ECE (%)", "linearity")


def _column_rank(col: str) -> int:
    name = col.split(" ε=")[0]
    return _COLUMN_ORDER.index(name) if name in _COLUMN_ORDER else len(_COLUMN_ORDER)


def wide_frame(df: pd.DataFrame, reference: str | None = None, reference_dataset: str | None = None) -> pd.DataFrame:
    """One row per (dataset, defense): clean accuracy, then one 'mean ± std' column per attack and eps
    (ECE rows show the calibration error); with a reference, its numbers follow in `paper:` columns."""
    rows: dict[tuple, dict] = {}
    for r in df.itertuples():
        row = rows.setdefault((r.dataset, r.defense), {"dataset": r.dataset, "defense": r.defense})
        if r.attack == "clean":
            row["clean"] = (r.clean_acc, r.clean_acc_std, "")
        elif r.attack == "ece":
            row["ECE (%)"] = (r.value, 0.0, "")
        else:
            row[_column(r.attack, r.eps)] = (r.robust_acc, r.robust_acc_std, _THREAT_MARK.get(r.threat_model, ""))
            row.setdefault("clean", (r.clean_acc, r.clean_acc_std, ""))
    out = pd.DataFrame(list(rows.values()))
    measured = sorted((c for c in out.columns if c not in ("dataset", "defense")), key=_column_rank)
    out = out[["dataset", "defense", *measured]] if not out.empty else out
    if reference and not out.empty:
        ref = reference_table(reference)
        for key, row in rows.items():
            ds = reference_dataset or row["dataset"]
            for r in ref[(ref["dataset"] == ds) & (ref["defense"] == row["defense"])].itertuples():
                col = f"{reference}: {_column(r.attack, r.eps)} [{r.table}]"
                out.loc[(out["dataset"] == key[0]) & (out["defense"] == key[1]), col] = f"{r.robust_acc:g}" + (
                    f" ± {r.robust_acc_std:g}" if pd.notna(r.robust_acc_std) else "")
                if pd.notna(r.clean_acc):
                    out.loc[(out["dataset"] == key[0]) & (out["defense"] == key[1]), f"{reference}: clean [{r.table}]"] = f"{r.clean_acc:g}"
    return out


def _cell(v) -> str:
    if isinstance(v, tuple):
        return f"{v[0]:.2f} ± {v[1]:.2f}{v[2]}"
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def render_wide(wide: pd.DataFrame, fmt: str) -> str:
    """Markdown (best per measured column in bold; ECE: lowest), HTML (one sortable page), CSV or JSON."""
    if wide.empty:
        return "(no results)\n"
    best: dict[str, float] = {}
    for col in wide.columns:
        vals = [v[0] for v in wide[col] if isinstance(v, tuple)]
        if vals:
            best[col] = min(vals) if col.startswith("ECE") else max(vals)
    text = wide.copy()
    for col in wide.columns:
        text[col] = [(f"**{_cell(v)}**" if fmt == "md" else f"<b>{_cell(v)}</b>" if fmt == "html" else _cell(v))
                     if isinstance(v, tuple) and col in best and v[0] == best[col] and len(wide) > 1 else _cell(v)
                     for v in wide[col]]
    legend = "accuracy % of the defended predictor, mean ± std over trials; ᵒ oblivious, ᵃ adaptive, ᵇ black-box"
    if fmt == "md":
        return text.to_markdown(index=False, disable_numparse=True) + f"\n\n{legend}\n"
    if fmt == "csv":
        return text.to_csv(index=False)
    if fmt == "json":
        return json.dumps(text.to_dict(orient="records"), indent=2) + "\n"
    return _html_page(text, legend)


def _html_page(text: pd.DataFrame, legend: str) -> str:
    table = text.to_html(index=False, escape=False, table_id="lb")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>varmixup-bench leaderboard</title>
<style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}
th{{cursor:pointer;background:#eee}}</style></head><body><h1>varmixup-bench leaderboard</h1><p>{legend}; click a
column header to sort.</p>{table}<script>
document.querySelectorAll('#lb th').forEach((th, i) => th.addEventListener('click', () => {{
  const body = document.querySelector('#lb tbody'); const rows = Array.from(body.rows);
  const key = r => {{ const t = r.cells[i].innerText; const v = parseFloat(t); return isNaN(v) ? t : v; }};
  const dir = th.dataset.dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
  rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (dir === 'asc' ? 1 : -1));
  rows.forEach(r => body.appendChild(r)); }}));
</script></body></html>
"""
