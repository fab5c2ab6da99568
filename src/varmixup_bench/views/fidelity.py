"""The VAE-fidelity trade-off (issue 30, item 3): one row per MMD-VAE of the stored records, its test PSNR (attack
`vae-psnr`) beside the accuracies of the Var* defenses built on it, each with its 95 % interval; a table (CSV) and a
figure (accuracy against PSNR).

A reader of the paper asks whether VarMI's oblivious robustness comes from a lossy VAE purifying the input, and
what is left of it as the VAE becomes faithful: the rows answer it with VarERM and VarMixup clean accuracy,
VarMixup+VarMI clean, oblivious PGD-10, adaptive PGD-10 and its worst case over draws, and VarERM+VarMI at
lambda_MI = 1 (F_w(decode(mu(x))): the classifier inside the VAE's own domain).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from varmixup_bench.core.atomic import atomic_write, atomic_write_text
from varmixup_bench.core.errors import BenchError
from varmixup_bench.results.record import field_value

# (column prefix, defense, attack, accuracy field, inference filter): the accuracies of a fidelity row
CELLS = [
    ("varerm_clean", "varerm", "clean", "clean_acc", None),
    ("varmixup_clean", "varmixup", "clean", "clean_acc", None),
    ("varmi_clean", "varmixup+varmi", "clean", "clean_acc", None),
    ("varmi_pgd10", "varmixup+varmi", "pgd10", "robust_acc", None),
    ("varmi_adaptive_pgd10", "varmixup+varmi", "adaptive-pgd10", "robust_acc", None),
    ("varmi_adaptive_pgd10_worst", "varmixup+varmi", "adaptive-pgd10", "robust_acc_worst", None),
    ("own_domain", "varerm+varmi", "clean", "clean_acc", 1.0),
]
LABELS = {"varerm_clean": "VarERM clean", "varmixup_clean": "VarMixup clean", "varmi_clean": "VarMixup+VarMI clean",
          "varmi_pgd10": "VarMixup+VarMI oblivious PGD-10", "varmi_adaptive_pgd10": "VarMixup+VarMI adaptive PGD-10",
          "varmi_adaptive_pgd10_worst": "… its worst case over draws",
          "own_domain": "VarERM+VarMI at λ_MI = 1 (own domain)"}
COLUMNS = (["vae", "latent", "dataset", "preset", "psnr_db", "psnr_ci_low", "psnr_ci_high", "epochs",
            "train_seconds", "n"]
           + [f"{c}{s}" for c, *_ in CELLS for s in ("", "_ci_low", "_ci_high")] + ["vae_config"])


def _vae_config(record: dict) -> dict | None:
    """The non-adversarial MMD-VAE a record's model or inference rule uses (without its seed), or None."""
    for field in ("train_config", "inference_config"):
        cfg = field_value(record.get(field)) or {}
        vae = (cfg.get("recipe_config") or {}).get("vae") if field == "train_config" else cfg.get("vae")
        if isinstance(vae, dict) and not vae.get("adversarial"):
            return {k: v for k, v in vae.items() if k != "seed"}
    return None


def _label(cfg: dict) -> str:
    if cfg.get("arch", "flat") == "flat":
        return f"flat, latent {cfg.get('latent_dim')}, {cfg.get('epochs')} epochs"
    return (f"conv, stride {cfg.get('latent_stride')}, {cfg.get('latent_channels')} channels, "
            f"width {cfg.get('width')}, {cfg.get('epochs')} epochs")


def _latent(shape: Any, cfg: dict) -> str:
    if isinstance(shape, list) and shape:
        return "x".join(str(int(s)) for s in (shape[1:] + shape[:1] if len(shape) == 3 else shape))
    return str(cfg.get("latent_dim", "?"))


def _group(record: dict, cfg: dict) -> str:
    """What must agree for records to sit in one fidelity row: the VAE, and the run around it (dataset, preset,
    architecture, test images, training subset)."""
    ov = field_value(record.get("train_overrides")) or {}
    return json.dumps({"vae": cfg, "dataset": record.get("dataset"), "preset": record.get("preset"),
                       "model": record.get("model"), "n": record.get("n_examples"),
                       "train_subset": ov.get("train_subset") if isinstance(ov, dict) else None}, sort_keys=True)


def _default_lambda(preset: str | None, recipe: str) -> float | None:
    from varmixup_bench.config.presets import PRESETS

    return PRESETS.get(preset).lambda_mi_for(recipe) if preset in PRESETS else None


def fidelity_rows(records: list[dict], dataset: str | None = None, seed: int = 0) -> list[dict]:
    """One row per MMD-VAE (and run) that has a `vae-psnr` record (training seed `seed`), sorted by PSNR; each
    accuracy the newest record of its cell, '' where the cell was not run. VarMixup+VarMI cells take the preset's
    lambda_MI (a lambda sweep in the same store does not leak in); the own-domain cell lambda_MI = 1."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        if (dataset and r.get("dataset") != dataset) or int(r.get("seed") or 0) != seed:
            continue
        cfg = _vae_config(r)
        if cfg is not None:
            groups.setdefault(_group(r, cfg), []).append(r)

    def newest(rs: list[dict]) -> dict | None:
        return max(rs, key=lambda r: str(r.get("timestamp", ""))) if rs else None

    rows = []
    for key, recs in groups.items():
        psnr = newest([r for r in recs if r.get("attack") == "vae-psnr"])
        if psnr is None:
            continue
        cfg, details = json.loads(key)["vae"], field_value(psnr.get("details")) or {}
        ci = details.get("psnr_ci") or ["", ""]
        row: dict[str, Any] = {"vae": _label(cfg), "latent": _latent(details.get("latent_shape"), cfg),
                               "dataset": psnr.get("dataset"), "preset": psnr.get("preset"),
                               "psnr_db": round(float(psnr["value"]), 3), "psnr_ci_low": ci[0], "psnr_ci_high": ci[1],
                               "epochs": details.get("vae_epochs", cfg.get("epochs")),
                               "train_seconds": details.get("vae_train_seconds", ""), "n": psnr.get("n_examples"),
                               "vae_config": json.dumps(cfg, sort_keys=True)}
        for col, defense, attack, field, lam in CELLS:
            want = lam if lam is not None else _default_lambda(psnr.get("preset"), defense.split("+")[0])
            cell = []
            for r in recs:
                if r.get("defense") != defense or r.get("attack") != attack:
                    continue
                got = (field_value(r.get("inference_config")) or {}).get("lambda_mi")
                if "+" in defense and want is not None and (
                        (got is None and lam is not None) or (got is not None and abs(float(got) - want) > 1e-9)):
                    continue  # another lambda_MI's cell (a record without one counts only for the preset's)
                cell.append(r)
            r = newest(cell)
            ok = r is not None and r.get(field) not in (None, "")
            row[col] = round(float(r[field]), 2) if ok else ""
            for bound in ("_ci_low", "_ci_high"):
                v = r.get(f"{field}{bound}") if ok else None
                row[f"{col}{bound}"] = round(float(v), 2) if v not in (None, "") else ""
        rows.append(row)
    return sorted(rows, key=lambda r: r["psnr_db"])


def write_csv(rows: list[dict], path: Path) -> Path:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=COLUMNS)
    atomic_write_text(Path(path), frame.to_csv(index=False))
    return Path(path)


def plot_fidelity(records: list[dict], path: Path, defense: str | None = None, dataset: str | None = None,
                  attack: str | None = None) -> Path:
    """Accuracy against the VAE's test PSNR, one line per cell of CELLS with its 95 % intervals, ERM's clean
    accuracy (same dataset and preset, newest record) as a dotted reference; the table is written beside the
    figure (same name, .csv)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = fidelity_rows(records, dataset)
    if not rows:
        raise BenchError("no vae-psnr records: run the Var* defenses with the attack vae-psnr (leaderboards/"
                         "cifar10-regime.toml does) before `bench plot vae-fidelity`")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = [r["psnr_db"] for r in rows]
    for i, (col, *_rest) in enumerate(CELLS):
        pts = [(x, r[col], r[f"{col}_ci_low"], r[f"{col}_ci_high"]) for x, r in zip(xs, rows) if r[col] != ""]
        if not pts:
            continue
        px, py, lo, hi = zip(*pts)
        err = [[max(0.0, y - (l if l != "" else y)) for y, l in zip(py, lo)],
               [max(0.0, (h if h != "" else y) - y) for y, h in zip(py, hi)]]
        ax.errorbar(px, py, yerr=err, marker="osD^v<>"[i % 7], capsize=2, label=LABELS[col],
                    linestyle="--" if col.endswith("worst") else "-")
    presets = {row["preset"] for row in rows}
    erm = [r for r in records if r.get("defense") == "erm" and r.get("attack") == "clean"
           and (not dataset or r.get("dataset") == dataset) and int(r.get("seed") or 0) == 0
           and r.get("preset") in presets]
    if erm:
        ref = max(erm, key=lambda r: str(r.get("timestamp", "")))
        ax.axhline(float(ref["clean_acc"]), color="gray", linestyle=":", label=f"ERM clean ({ref.get('preset')})")
    ax.set(xlabel="VAE test PSNR (dB, reconstructions from encoder means)", ylabel="accuracy (%)",
           title="VAE fidelity against accuracy" + (f" — {dataset}" if dataset else ""))
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{x:.1f}" for x in xs])
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    write_csv(rows, Path(path).with_suffix(".csv"))
    return Path(path)
