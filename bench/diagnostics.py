"""Gradient-masking warning signs (Carlini et al., "On Evaluating Adversarial Robustness") over the store.

Each check is registered by name and looks at the latest records of one trained model (dataset, defense,
config hash: each training seed is its own model, never compared with another's); a finding names the check,
the model, the rows it concerns and why. A check fires only when the difference exceeds two standard errors of
the difference (bench.stats): paired on the same images when both records keep per-image results, otherwise
from each accuracy's binomial standard error and trial spread. Two evaluations of one randomised predictor
differ by its own sampling noise; that noise never fires a check.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from bench.registry import Registry
from bench.stats import compare_records


@dataclass(frozen=True)
class Finding:
    check: str
    dataset: str
    defense: str
    rows: tuple[tuple[str, float], ...]  # (attack, eps) of the affected leaderboard rows
    message: str
    norm: str = "Linf"  # the threat model's norm of those rows (checks compare radii within one norm)
    model: str = ""  # the trained model's config hash (one per training seed)
    seed: str = ""  # its training seed, for the reader


Check = Callable[[pd.DataFrame], list[tuple[tuple[tuple[str, float], ...], str]]]
CHECKS: Registry[Check] = Registry("diagnostic")
GRADIENT_ATTACKS = ("pgd10", "pgd50", "adaptive-pgd10", "adaptive-pgd50", "fgsm")


def exceeds(a: pd.Series, b: pd.Series, z: float = 2.0, which: tuple[str, str] = ("robust", "robust")) -> bool:
    """a's accuracy exceeds b's by more than z standard errors of the difference (paired where possible)."""
    return compare_records(a.to_dict(), b.to_dict(), which).a_above_b(z)


@CHECKS.register("accuracy-rises-with-eps", help="robust accuracy should not rise as eps grows")
def rises_with_eps(df: pd.DataFrame):
    out = []
    for attack, g in df[df["attack"].isin(GRADIENT_ATTACKS)].groupby("attack"):
        g = g.sort_values("eps")
        for (_, a), (_, b) in zip(g.iloc[:-1].iterrows(), g.iloc[1:].iterrows()):
            if exceeds(b, a):
                out.append((((attack, a["eps"]), (attack, b["eps"])),
                            f"{attack}: {b['robust_acc']:.1f}% at eps {b['eps']:.4g} > {a['robust_acc']:.1f}% at {a['eps']:.4g}"))
    return out


@CHECKS.register("large-eps-not-zero", help="at L-inf eps >= 0.5 a deterministic model should be at ~0%")
def large_eps(df: pd.DataFrame):
    """Half the pixel range in L-inf; an L2 radius of 0.5 is a small ball (a 32x32x3 image's diagonal is ~55)."""
    if "norm" in df:
        df = df[df["norm"] != "L2"]
    rows = df[(df["eps"] >= 0.5) & df["threat_model"].isin(["white-box", "adaptive"]) & df["attack"].isin(GRADIENT_ATTACKS)]
    return [(((r["attack"], r["eps"]),), f"{r['attack']} at eps {r['eps']:.2g} leaves {r['robust_acc']:.1f}% accurate")
            for _, r in rows.iterrows() if float(r.get("robust_acc_ci_low", r["robust_acc"])) > 5.0]


def _pairs(df: pd.DataFrame, stronger: str, weaker: str):
    """(eps, record of `stronger`, record of `weaker`) at every eps both were run at (the latest of each)."""
    a = df[df["attack"] == stronger].drop_duplicates("eps", keep="last").set_index("eps", drop=False)
    b = df[df["attack"] == weaker].drop_duplicates("eps", keep="last").set_index("eps", drop=False)
    for eps in a.index.intersection(b.index):
        yield eps, a.loc[eps], b.loc[eps]


@CHECKS.register("adaptive-above-oblivious", help="an attack that knows the defense should not do worse")
def adaptive_above(df: pd.DataFrame):
    out = []
    for steps in ("10", "50"):
        for eps, ada, obl in _pairs(df, f"adaptive-pgd{steps}", f"pgd{steps}"):
            if exceeds(ada, obl):
                out.append((((f"adaptive-pgd{steps}", eps), (f"pgd{steps}", eps)),
                            f"adaptive-pgd{steps} {ada['robust_acc']:.1f}% > oblivious pgd{steps} {obl['robust_acc']:.1f}%"))
    return out


@CHECKS.register("pgd50-above-pgd10", help="more PGD steps should not help the defense beyond noise")
def more_steps(df: pd.DataFrame):
    return [(((f"pgd50", eps), ("pgd10", eps)), f"pgd50 {p50['robust_acc']:.1f}% > pgd10 {p10['robust_acc']:.1f}%")
            for eps, p50, p10 in _pairs(df, "pgd50", "pgd10") if exceeds(p50, p10)]


@CHECKS.register("blackbox-beats-whitebox", help="gradient-free SPSA should not beat the strongest gradient attack "
                 "that sees the defended predictor (white-box, or adaptive for a randomised defense)")
def blackbox(df: pd.DataFrame):
    """SPSA against the strongest white-box / adaptive attack at its eps. A randomised defense's oblivious PGD is
    not that attack (it sees F_w only): SPSA below it is `oblivious-overstates`' finding, not a weak white-box."""
    out = []
    white = df[df["threat_model"].isin(["white-box", "adaptive"]) & (df["attack"] != "spsa")
               & df["robust_acc"].notna()]
    for _, spsa in df[df["attack"] == "spsa"].drop_duplicates("eps", keep="last").iterrows():
        same_eps = white[np.isclose(white["eps"].astype(float), float(spsa["eps"]))]
        if same_eps.empty:
            continue
        best = same_eps.loc[same_eps["robust_acc"].astype(float).idxmin()]
        if exceeds(best, spsa):
            out.append(((("spsa", spsa["eps"]), (best["attack"], best["eps"])),
                        f"SPSA {spsa['robust_acc']:.1f}% < {best['attack']} {best['robust_acc']:.1f}% "
                        f"({best['threat_model']}): a gradient-free attack beats every gradient attack"))
    return out


@CHECKS.register("oblivious-overstates", help="a randomised defense's oblivious accuracy is significantly above "
                 "its adaptive accuracy: the oblivious number is not robustness")
def oblivious_overstates(df: pd.DataFrame):
    """Against the strongest of every adaptive attack at the oblivious cell's eps (adaptive PGD, APGD, AutoAttack,
    the surrogate transfer, a catalog `adaptive:` attack): any one of them below it shows the overstatement."""
    out = []
    adaptive = df[(df["threat_model"] == "adaptive") & df["robust_acc"].notna()]
    oblivious = df[(df["threat_model"] == "oblivious") & df["attack"].isin(GRADIENT_ATTACKS)]
    for _, obl in oblivious.iterrows():
        same_eps = adaptive[np.isclose(adaptive["eps"].astype(float), float(obl["eps"]))]
        if same_eps.empty:
            continue
        ada = same_eps.loc[same_eps["robust_acc"].astype(float).idxmin()]  # the strongest adaptive attack
        if exceeds(obl, ada):
            out.append((((obl["attack"], obl["eps"]), (ada["attack"], ada["eps"])),
                        f"oblivious {obl['attack']} {obl['robust_acc']:.1f}% > adaptive {ada['attack']} "
                        f"{ada['robust_acc']:.1f}%: the oblivious number overstates robustness"))
    return out


@CHECKS.register("not-converged", help="the largest attack budget (steps, EOT draws or restarts of a bench "
                 "converge grid) is still significantly below the one before it: the attack has not converged")
def not_converged(df: pd.DataFrame):
    from bench.converge import unconverged

    out = []
    for prev, last, axis in unconverged([r.to_dict() for _, r in df.iterrows()]):
        out.append((((prev["attack"], prev["eps"]), (last["attack"], last["eps"])),
                    f"{last['attack']} {last['robust_acc']:.1f}% < {prev['attack']} {prev['robust_acc']:.1f}%: more "
                    f"{axis} still lowers accuracy, so the attack has not converged"))
    return out


def diagnose(frame: pd.DataFrame) -> list[Finding]:
    """Run every registered check on each (dataset, defense, trained model, norm) of a leaderboard frame: an L2
    radius is never compared with an L-inf one, nor one seed's model with another's."""
    findings = []
    frame = _with_models(_with_norms(frame))
    for (dataset, defense, model, norm), g in frame.groupby(["dataset", "defense", "_model", "norm"], sort=True):
        seeds = ",".join(sorted({str(s) for s in g["seed"] if pd.notna(s)})) if "seed" in g else ""
        for name in CHECKS.names():
            for rows, message in CHECKS.get(name)(g):
                if norm == "L2":
                    message = f"[L2] {message}"
                findings.append(Finding(name, dataset, defense, tuple(rows), message, norm, model, seeds))
    # models are grouped by config hash; list them by seed, so a defense's seeds read 0, 1, 2
    return sorted(findings, key=lambda f: (f.dataset, f.defense, f.norm, f.seed, f.check))


def flag_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Add a `flags` column naming the checks that fired on each row."""
    frame = _with_norms(frame)
    flags: dict[tuple, set[str]] = {}
    for f in diagnose(frame):
        for attack, eps in f.rows:
            flags.setdefault((f.dataset, f.defense, f.model, f.norm, attack, float(eps)), set()).add(f.check)
    out = frame.copy()
    models = _with_models(frame)["_model"]
    out["flags"] = [", ".join(sorted(flags.get((r.dataset, r.defense, m, r.norm, r.attack, float(r.eps)), ())))
                    for r, m in zip(frame.itertuples(), models)]
    return out


def _with_models(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with `_model`, the trained model each record evaluated (its config hash; "" where unknown)."""
    hashes = frame["config_hash"] if "config_hash" in frame else pd.Series("", index=frame.index)
    return frame.assign(_model=[str(h) if pd.notna(h) else "" for h in hashes])


def _with_norms(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its `norm` column (leaderboard frames have it; a bare frame of records gets it here)."""
    if "norm" in frame and frame["norm"].notna().all():
        return frame
    from bench.leaderboard import record_norms

    return frame.assign(norm=record_norms(frame))
