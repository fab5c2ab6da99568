"""Pooling training seeds: the results of one defense trained with several seeds, evaluated the same way on the
same images, shown as one cell — the mean over seeds, its 95 % interval widened by the seed-to-seed spread."""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from varmixup_bench.results.record import _without_seeds, model_signature  # noqa: F401  (re-exported)
from varmixup_bench.results.stats import (decode_per_image, encode_per_image, interval_from_summary, value_interval,
                                          value_interval_of_seeds)

# what must agree for two records to be the same evaluation of the same recipe (all but the training seed); the
# data's content hash too: subsets are drawn with the preset's subset_seed, so the seeds of one recipe share it, and
# two that differ were trained or tested on other images (a dataset archive replaced under the same name)
_SAME = ["dataset", "data_fingerprint", "defense", "attack", "threat_model", "norm", "eps", "step", "n_examples",
         "preset", "trials"]


def _attack_key(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str) if isinstance(v, dict) else str(v or "")


def pool_seeds(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per group of records that differ only in the training seed (`seeds` = how many). Accuracies are
    the means over seeds; each interval is the Wilson interval over the n images widened in quadrature by
    t(S-1)·s/√S of the S seeds' spread (stats.interval_from_summary with seeds as trials); per-image outcomes
    are summed over seeds (the images are the same: subsets do not depend on the seed), so pooled cells keep
    their paired tests, and each seed's accuracy is kept in `<field>_by_seed`, so that those tests also carry the
    seeds' spread (stats.seed_spread). A metric's value (ECE, γ) is the seeds' mean, its interval in
    `value_ci_low`/`value_ci_high` (stats.value_interval_of_seeds). Rows of a single seed are unchanged, with
    seeds = 1."""
    if frame.empty:
        return frame.assign(seeds=[])
    df = frame.copy()
    df["_model"] = [model_signature(r) for _, r in df.iterrows()]
    # draws per adversarial example: a record older than the field, or without an adversary, classified with one
    df["_draws"] = pd.to_numeric(df["draws"], errors="coerce").fillna(1).astype(int) if "draws" in df else 1
    df["_attack"] = df["attack_config"].map(_attack_key)
    keys = [c for c in _SAME if c in df] + ["_model", "_attack", "_draws"]  # per-image counts are over trials x draws
    filled = df[keys].map(str)  # NaN as "nan": a missing value is a value, not a dropped group
    out = []
    for _, idx in filled.groupby(keys, sort=False).groups.items():
        g = df.loc[idx]
        # one record per seed: two models of one seed that only vae_seed tells apart (model_signature ignores it)
        # are one seed, the newer kept, not two
        if "timestamp" in g:
            g = g.sort_values("timestamp", kind="stable")
        g = g.loc[~g["seed"].astype(str).duplicated(keep="last")]
        if g["seed"].nunique() <= 1:
            out.append(g.iloc[[-1]].assign(seeds=1))
            continue
        out.append(pd.DataFrame([_pooled(g)]))
    return pd.concat(out, ignore_index=True).drop(columns=["_model", "_attack", "_draws"])


def _pooled(g: pd.DataFrame) -> dict[str, Any]:
    row = g.iloc[-1].to_dict()
    s, n = len(g), int(row["n_examples"])
    row.update(seeds=s, seed=",".join(str(v) for v in sorted(g["seed"].unique())),
               config_hash=",".join(str(v) for v in g["config_hash"]))
    for which in ("clean_acc", "robust_acc", "robust_acc_worst"):
        if which not in g:
            continue
        if g[which].isna().any():  # not every seed has it: no mean of seeds (not the last seed's value)
            row.update({which: math.nan, f"{which}_std": math.nan, f"{which}_ci_low": math.nan,
                        f"{which}_ci_high": math.nan})
            row.pop(f"{which}_by_seed", None)
            continue
        vals = g[which].astype(float).to_numpy()
        mean, std = float(vals.mean()), float(vals.std(ddof=1))
        lo, hi = interval_from_summary(mean, std, s, n)
        row.update({which: mean, f"{which}_std": std, f"{which}_ci_low": lo, f"{which}_ci_high": hi,
                    f"{which}_by_seed": json.dumps({str(k): float(v) for k, v in zip(g["seed"], vals)})})
    if "value" in g:  # a metric's value: the seeds' mean, or none where a seed lacks it (not the last seed's)
        known = g["value"].notna().all()
        row["value"] = float(g["value"].astype(float).mean()) if known else math.nan
        ci = value_interval_of_seeds(g["value"].astype(float).tolist(),
                                     [value_interval(r) for r in g.to_dict("records")]) if known else None
        row.update(value_ci_low=ci[0] if ci else math.nan, value_ci_high=ci[1] if ci else math.nan)
    row["per_image"] = _pooled_per_image(list(g["per_image"]))
    return row


def _pooled_per_image(blobs: list) -> dict | None:
    """Per-image counts summed over seeds (None unless every seed has them on the same images)."""
    decoded = [decode_per_image(b) for b in blobs]
    if any(d is None for d in decoded) or any(not np.array_equal(d["idx"], decoded[0]["idx"]) for d in decoded):
        return None
    draws = [int((json.loads(b) if isinstance(b, str) else b).get("draws", 1) or 1) for b in blobs]
    conditions = [d["conditions"] for d in decoded]
    if len(set(draws)) != 1 or len(set(conditions)) != 1:
        return None
    t = sum(d["trials"] for d in decoded)
    clean = sum(np.rint(d["clean"] * d["trials"]) for d in decoded)
    robust = sum(np.rint(d["robust"] * d["trials"] * draws[0] * conditions[0]) for d in decoded)
    if conditions[0] > 1:
        return encode_per_image(decoded[0]["idx"], clean, robust, t, conditions=conditions[0])
    known = draws[0] > 1 and all(d["worst"] is not None for d in decoded)
    worst = sum(np.rint(d["worst"] * d["trials"]) for d in decoded) if known else None
    return encode_per_image(decoded[0]["idx"], clean, robust, t, draws=draws[0], worst_correct=worst)
