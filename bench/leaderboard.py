"""Leaderboards are views of the result records: one row per (dataset, defense, attack, threat model, eps)."""
from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import pandas as pd

from bench.errors import BenchError

ROW_KEY = ["dataset", "defense", "attack", "threat_model", "eps"]
COLUMNS = [
    "dataset", "defense", "attack", "threat_model", "eps", "step", "clean_acc", "clean_acc_std", "robust_acc",
    "robust_acc_std", "target_hit_rate", "metric", "value", "trials", "n_examples", "seconds", "seed", "model", "preset", "device", "config_hash",
    "eval_hash", "timestamp", "versions",
]
FORMATS = ("csv", "md", "json")


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
    if abs(scaled - round(scaled)) < 1e-6:
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
