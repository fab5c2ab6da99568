"""`bench leaderboard --format robustbench`: one RobustBench `model_info` JSON per defense, laid out as RobustBench
keeps them (DIR/DATASET/Linf/DEFENSE.json, and DIR/DATASET/L2/DEFENSE.json for defenses with L2 results), with
exactly the fields of robustbench.utils.ModelInfo.

RobustBench's headline number is AutoAttack accuracy (`autoattack_acc`); it is filled only from an `autoattack`
record, never from a weaker attack. The footnote names the worst accuracy over every attack that was run, on one
training seed (the one with the most attacks) where the defense has several.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from varmixup_bench.core.atomic import atomic_write_text
from varmixup_bench.core.errors import BenchError
from varmixup_bench.views.leaderboard import eps_label, leaderboard_frame

# robustbench.utils.ModelInfo (1.1.1), in its order; tests/test_robustbench.py checks this against the dataclass
MODEL_INFO_FIELDS = (
    "link", "name", "authors", "additional_data", "number_forward_passes", "dataset", "venue", "architecture",
    "eps", "clean_acc", "reported", "corruptions_acc", "corruptions_acc_3d", "corruptions_mce",
    "corruptions_mce_3d", "autoattack_acc", "footnote",
)
_ROBUSTBENCH_DATASETS = ("cifar10", "cifar100", "imagenet")
_NO_BALL = ("clean", "corruptions", "ece", "linearity")
SECTIONS = ("Linf", "L2")  # RobustBench's threat-model folders for eps attacks


def _slug(text: str) -> str:
    """A file-name part: `imagefolder:../x/cifar10-jpeg.tar.gz` -> `imagefolder-cifar10-jpeg.tar.gz`."""
    kind, sep, path = text.partition(":")
    text = f"{kind}-{Path(path).name}" if sep else text
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text)


def _pct(value: float | None) -> str | None:
    return None if value is None or pd.isna(value) else f"{value:.2f}"


def _forward_passes(inference_config: Any) -> int:
    """Forward passes of F_w per prediction: N_MI for the MI rules, else one."""
    return int(inference_config.get("n_mi", 1)) if isinstance(inference_config, dict) else 1


def _radius(eps: float, norm: str) -> str:
    return f"{eps:g}" if norm == "L2" else eps_label(eps)


def _ball(rows: pd.DataFrame, norm: str) -> pd.DataFrame:
    """The rows of attacks with a radius in `norm`."""
    norms = rows["norm"] if "norm" in rows else pd.Series(["Linf"] * len(rows), index=rows.index)
    return rows[~rows["attack"].isin(_NO_BALL) & (rows["eps"] > 0) & (norms == norm)]


def _one_seed(ball: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows of the training seed with the most attacks, and the footnote's words for it: a worst case over
    attacks compares one model's accuracies, never a three-seed mean with another attack's single seed."""
    if "seed" not in ball or ball["seed"].nunique() <= 1:
        return ball, ""
    seeds = ball["seed"].map(str)  # pooled rows carry "0,1,2"
    counts = ball.groupby(seeds)["attack"].nunique()
    seed = min(counts.index[counts == counts.max()])
    return ball[seeds == seed], f" on training seed {seed}"


def model_info(rows: pd.DataFrame, norm: str = "Linf", seed_rows: pd.DataFrame | None = None) -> dict[str, Any]:
    """The ModelInfo fields for one (dataset, defense) in one threat-model section (`Linf` or `L2`) from its
    leaderboard rows (accuracies in percent; seeds pooled). `seed_rows`, the same rows before pooling, give the
    footnote's worst case over attacks, taken on one training seed."""
    first = rows.iloc[0]
    linf = _ball(rows, norm)
    eps = None
    if not linf.empty:
        counts = linf["eps"].value_counts()
        eps = float(min(e for e in counts.index if counts[e] == counts.max()))
        linf = linf[linf["eps"] == eps]
    per_seed = _ball(rows if seed_rows is None else seed_rows, norm)
    per_seed, on_seed = _one_seed(per_seed[per_seed["eps"] == eps])
    clean_rows = rows[rows["attack"] == "clean"]
    clean = clean_rows["clean_acc"].iloc[0] if not clean_rows.empty else (linf["clean_acc"].mean() if not linf.empty else None)
    aa = linf[linf["attack"] == "autoattack"]
    corr = rows[rows["attack"] == "corruptions"]
    sizes = {str(a): int(n) for a, n in zip(rows["attack"], rows["n_examples"])}
    base = max(set(sizes.values()), key=list(sizes.values()).count)
    others = ", ".join(f"{a} {n}" for a, n in sorted(sizes.items()) if n != base)
    notes = [f"varmixup-bench, preset {first['preset']}, {base} test images" + (f" ({others})" if others else "")]
    if not per_seed.empty:
        worst = per_seed.loc[per_seed["robust_acc"].idxmin()]
        notes.append(f"worst {'L2' if norm == 'L2' else 'L-inf'} accuracy at {_radius(eps, norm)}{on_seed} over "
                     f"{', '.join(sorted(per_seed['attack']))}: "
                     f"{worst['robust_acc']:.2f} ({worst['attack']}, {worst['threat_model']})")
    if aa.empty:
        notes.append("AutoAttack not run: autoattack_acc is empty")
    info = dict.fromkeys(MODEL_INFO_FIELDS)
    info.update({
        "name": str(first["defense"]),
        "additional_data": False,
        "number_forward_passes": _forward_passes(first.get("inference_config")),
        "dataset": first["dataset"] if first["dataset"] in _ROBUSTBENCH_DATASETS else str(first["dataset"]),
        "architecture": str(first["model"]),
        "eps": _radius(eps, norm) if eps is not None else None,
        "clean_acc": _pct(clean),
        "corruptions_acc": _pct(corr["robust_acc"].iloc[0]) if not corr.empty else None,
        "autoattack_acc": _pct(aa["robust_acc"].iloc[0]) if not aa.empty else None,
        "footnote": "; ".join(notes),
    })
    return info


def write_robustbench(records: list[dict[str, Any]], out_dir: Path, dataset: str | None = None) -> list[Path]:
    """Write one JSON per (dataset, defense, section) under out_dir/DATASET/Linf/ (always) and .../L2/ (defenses
    with L2 results); returns the paths written."""
    from varmixup_bench.results.seeds import pool_seeds

    frame = leaderboard_frame(records, dataset)
    if frame.empty:
        raise BenchError("no results to export" + (f" for dataset {dataset}" if dataset else ""))
    pooled = pool_seeds(frame)  # several training seeds: their mean, as in the wide leaderboard
    paths = []
    for (ds, defense), rows in pooled.groupby(["dataset", "defense"], sort=True):
        seed_rows = frame[(frame["dataset"] == ds) & (frame["defense"] == defense)]
        for section in SECTIONS:
            if section != "Linf" and not (rows["norm"] == section).any():
                continue
            path = Path(out_dir) / _slug(ds) / section / f"{_slug(defense)}.json"
            atomic_write_text(path, json.dumps(model_info(rows, section, seed_rows), indent=2) + "\n")
            paths.append(path)
    return paths
