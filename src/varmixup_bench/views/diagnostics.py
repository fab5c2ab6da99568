"""Gradient-masking warning signs (Carlini et al., "On Evaluating Adversarial Robustness") over the store.

Each check is registered by name and looks at the latest records of one trained model (dataset, defense,
config hash: each training seed is its own model, never compared with another's). A check returns every
comparison it made, each with a p value (varmixup_bench.results.stats: paired on the same images when both records keep
per-image results, exact McNemar for single-draw 0/1 outcomes, else a z test on the per-image differences, whose
spread includes a randomised predictor's own draw-to-draw noise; unpaired from binomial errors and trial
spreads otherwise). `diagnose` then decides all comparisons of one call together with Holm–Bonferroni at a
family-wise error rate of 5 % (varmixup_bench.results.stats.FAMILY_ALPHA): however many checks, ε pairs and defenses one call
compares, the chance that it reports anything on pure noise is at most 5 %.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np
import pandas as pd

from varmixup_bench.core.registry import Registry
from varmixup_bench.results.record import eps_label, predictor_key, record_norms, relative_step
from varmixup_bench.results.stats import FAMILY_ALPHA, compare_records, holm, p_text, shown_pair


@dataclass(frozen=True)
class Finding:
    check: str
    dataset: str
    defense: str
    rows: tuple[tuple[str, float], ...]  # (attack, eps) of the affected leaderboard rows
    message: str
    norm: str = "Linf"  # the threat model's norm of those rows (checks compare radii within one norm)
    model: str = ""  # the predictor: its trained model's config hash, then `|` and inference settings if any
    seed: str = ""  # its training seed, for the reader
    overstated: tuple | None = None  # (attack, eps) of the number the finding says reads too high
    # the PGD step of each of `rows`' records (None: none, e.g. APGD): two records of one attack at one eps with
    # other steps (PGD-10 at the paper's 8/255 beside the eps/4 one) are told apart by it
    steps: tuple = ()

    def stepped_rows(self) -> list[tuple[str, float, float | None]]:
        """(attack, eps, step) of each of `rows` (step None where the finding keeps none)."""
        return [(a, e, self.steps[k] if k < len(self.steps) else None) for k, (a, e) in enumerate(self.rows)]

    @property
    def config_hash(self) -> str:
        """The trained model's config hash (`model` without its inference settings), as the records name it."""
        return self.model.split("|")[0]


@dataclass(frozen=True)
class Candidate:
    """One comparison a check made: the rows it concerns, what it would report, and the p value of the symptom
    (two-sided test, counted only in the symptom's direction). `group` merges candidates that report one
    finding (an oblivious cell against several adaptive attacks): the smallest rejected p of a group is shown."""

    rows: tuple[tuple[str, float], ...]
    message: str
    p: float
    group: tuple = ()
    overstated: int = 0  # which of `rows` the finding says reads too high (a view marks that number, not the other)
    steps: tuple = ()  # the step of each of `rows`' records (Finding.steps)


Check = Callable[[pd.DataFrame], list[Candidate]]
CHECKS: Registry[Check] = Registry("diagnostic")
# the untargeted attacks that follow a gradient (of F_w or, with EOT, of the defended predictor), by their kind
from varmixup_bench.attacks.base import attacks_of_kind  # noqa: E402
GRADIENT_ATTACKS = attacks_of_kind("gradient", "adaptive-gradient")


# the kinds of a query or transfer attack, which no gradient of the attacked predictor guides (SPSA, a catalog
# Square or HopSkipJump, transfer:SPEC), and of the attacks whose curves the eps checks read (AutoAttack's ensemble
# is gradient attacks and Square)
BLACK_BOX_KINDS = ("black-box", "transfer")
GRADIENT_KINDS = ("gradient", "adaptive-gradient", "ensemble")


@lru_cache(maxsize=None)
def attack_kind(spec: str) -> tuple[str, bool]:
    """(kind, targeted) of a record's attack spec, from its class (attacks.spec.attack_class): a budget such as
    `pgd(steps=20)` or a catalog `torchattacks:Square` is classed as its named relatives are, so that every check
    sees it; ("", False) for a spec this install cannot build (a plug-in's)."""
    from varmixup_bench.attacks.spec import attack_class

    try:
        cls = attack_class(str(spec))
    except Exception:  # noqa: BLE001 - an odd stored spec must not stop the checks of every other record
        # a transfer attack from a source this install cannot build is still a transfer attack
        return ("transfer", False) if str(spec).startswith("transfer:") else ("", False)
    return str(cls.kind), bool(cls.targeted)


def gradient_attack(spec: str) -> bool:
    """Whether a record's attack follows a gradient (of F_w, or with EOT of the defended predictor), untargeted."""
    kind, targeted = attack_kind(spec)
    return kind in GRADIENT_KINDS and not targeted


def black_box_attack(spec: str) -> bool:
    """Whether a record's attack is guided by no gradient of the attacked predictor (queries or a transfer),
    untargeted."""
    kind, targeted = attack_kind(spec)
    return kind in BLACK_BOX_KINDS and not targeted


def _rows_of(df: pd.DataFrame, test: Callable[[str], bool]) -> pd.Series:
    return df["attack"].map(lambda a: isinstance(a, str) and test(a)).astype(bool)


def _gradient_rows(df: pd.DataFrame) -> pd.Series:
    return _rows_of(df, gradient_attack)


def _projected(config) -> bool:
    """Whether a record's attack has no radius of its own (a catalog CW, DeepFool or JSMA: its minimal-norm
    examples projected onto the ball), whose accuracy at a radius says how often it failed, not how the defense
    holds: no eps check reads it."""
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            return False
    return isinstance(config, dict) and bool(config.get("projected"))


def _eps_rows(df: pd.DataFrame) -> pd.Series:
    """The gradient attacks with a radius of their own: the records the eps checks read."""
    projected = df["attack_config"].map(_projected).astype(bool) if "attack_config" in df else False
    return _gradient_rows(df) & ~projected


def symptom_p(a: pd.Series | dict, b: pd.Series | dict, which: tuple[str, str] = ("robust", "robust")) -> float:
    """p value that a's accuracy is above b's: the two-sided p of the difference when a is above b, else 1."""
    cmp = compare_records(_dict(a), _dict(b), which)
    return cmp.p if cmp.diff > 0 else 1.0


def exceeds(a: pd.Series, b: pd.Series, alpha: float = FAMILY_ALPHA,
            which: tuple[str, str] = ("robust", "robust")) -> bool:
    """a's accuracy is above b's at level alpha (one comparison on its own; `diagnose` corrects for many)."""
    return symptom_p(a, b, which) < alpha


def _dict(r) -> dict:
    return r.to_dict() if isinstance(r, pd.Series) else dict(r)


@CHECKS.register("accuracy-rises-with-eps", help="robust accuracy should not rise as eps grows (from the clean "
                 "accuracy at eps 0)")
def rises_with_eps(df: pd.DataFrame):
    """Each gradient attack's curve, starting at eps 0: its smallest radius against the clean accuracy of the same
    record (paired on its images), then each radius against the next."""
    out = []
    for attack, g in df[_eps_rows(df)].groupby("attack"):
        # a curve is the records of one relative step (eps/4 at every radius) or of one absolute step (a preset's or
        # --step's fixed step); eps 0 (no step) belongs to every curve; at a radius the latest record of that curve
        g = g.assign(_eps=g["eps"].astype(float).round(8), _rel=relative_steps(g),
                     _abs=[relative_step(s, 1.0) for s in g["step"]] if "step" in g else "-")
        zero, rest = g[g["_eps"] == 0], g[g["_eps"] > 0]
        curves = [c for by in ("_rel", "_abs") for _, c in rest.groupby(by, sort=False) if c["_eps"].nunique() >= 2]
        if not curves:  # no two radii of one step rule: each record of the smallest radius against its clean
            curves = [c for _, c in rest[rest["_eps"] == rest["_eps"].min()].iterrows()] if len(rest) else []
            curves = [pd.DataFrame([c]) for c in curves]
        seen = set()
        for c in curves:
            c = pd.concat([zero, c]).drop_duplicates("_eps", keep="last").sort_values("_eps", kind="stable")
            first = c.iloc[0]
            if first["eps"] > 0 and pd.notna(first.get("clean_acc")) and (first.name,) not in seen:
                seen.add((first.name,))
                out.append(Candidate(((attack, first["eps"]),),
                                     f"{_named(df, first)}: {first['robust_acc']:.1f}% at eps {first['eps']:.4g} > "
                                     f"{first['clean_acc']:.1f}% clean on the same images",
                                     symptom_p(first, first, ("robust", "clean")), steps=(step_of(first),)))
            for (i, a), (j, b) in zip(c.iloc[:-1].iterrows(), c.iloc[1:].iterrows()):
                if (i, j) not in seen:
                    seen.add((i, j))
                    out.append(Candidate(((attack, a["eps"]), (attack, b["eps"])),
                                         f"{_named(df, b)}: {b['robust_acc']:.1f}% at eps {b['eps']:.4g} > "
                                         f"{a['robust_acc']:.1f}% at {a['eps']:.4g}", symptom_p(b, a), overstated=1,
                                         steps=(step_of(a), step_of(b))))
    return out


@CHECKS.register("large-eps-not-zero", help="at L-inf eps >= 0.5 a working attack leaves ~0% (a randomised "
                 "predictor: its worst case over draws)")
def large_eps(df: pd.DataFrame):
    """Half the pixel range in L-inf; an L2 radius of 0.5 is a small ball (a 32x32x3 image's diagonal is ~55). A
    randomised predictor is judged by its worst case over draws where the record has one: its mean over draws
    keeps a floor of chance-level guesses (about 1/K) whatever the attack, which is no sign of masking."""
    if "norm" in df:
        df = df[df["norm"] != "L2"]
    rows = df[(df["eps"] >= 0.5) & df["threat_model"].isin(["white-box", "adaptive"]) & _eps_rows(df)]
    out = []
    for _, r in rows.iterrows():
        worst = (classified_with_draws(r) and "robust_acc_worst" in r and pd.notna(r["robust_acc_worst"]))
        acc = float(r["robust_acc_worst"] if worst else r["robust_acc"])
        if not (acc == acc) or not (pd.notna(r.get("n_examples")) and float(r["n_examples"]) >= 1):
            continue  # no accuracy or no image count (an old record): nothing to test, not a crash
        what = "worst case over draws" if worst else "accurate"
        out.append(Candidate(((r["attack"], r["eps"]),), f"{_named(df, r)} at eps {r['eps']:.2g} leaves {acc:.1f}% "
                             f"{what}", above_level_p({"robust_acc": acc, "n_examples": r["n_examples"]},
                                                      LARGE_EPS_LEVEL), steps=(step_of(r),)))
    return out


LARGE_EPS_LEVEL = 5.0  # percent: at L-inf eps >= 0.5 an attack that works leaves at most this much


def classified_with_draws(r) -> bool:
    """Whether a record's predictor is randomised and was classified with several draws (a deterministic
    record's `robust_acc_worst` is its accuracy again, no worst case over anything)."""
    try:
        draws = float(r.get("draws"))
    except (TypeError, ValueError):  # no draw count (an older record): one draw
        return False
    return r.get("stochastic") in (True, "True") and draws > 1  # NaN > 1 is False


def above_level_p(r, level: float) -> float:
    """p value that a record's robust accuracy is above `level` percent (exact binomial test over its n images;
    a mean over trials is rounded to whole images)."""
    from scipy.stats import binomtest

    n = int(r.get("n_examples") or 1)
    k = int(round(float(r["robust_acc"]) / 100.0 * n))
    return float(binomtest(k, n, level / 100.0, alternative="greater").pvalue) if k / n > level / 100 else 1.0


def step_of(r) -> float | None:
    """A record's PGD step (None where it has none)."""
    try:
        v = float(r.get("step"))
    except (TypeError, ValueError):
        return None
    return v if v == v else None


def same_step(a: float | None, b: Any) -> bool:
    """Whether a finding's step `a` is a record's step `b` (no step on the finding's side matches any)."""
    if a is None:
        return True
    try:
        return abs(float(b) - a) < 1e-9
    except (TypeError, ValueError):
        return False


def _named(df: pd.DataFrame, r) -> str:
    """The attack's name, with its step where the model has that attack at this eps at another step too (PGD-10
    at the paper's 8/255 beside the eps/4 one)."""
    same = df[(df["attack"] == r["attack"]) & np.isclose(df["eps"].astype(float), float(r["eps"]))]
    steps = {relative_step(s, e) for s, e in zip(same["step"], same["eps"])} if "step" in same else set()
    if len(steps) < 2 or step_of(r) is None:
        return str(r["attack"])
    return f"{r['attack']} (step {eps_label(step_of(r))})"


def relative_steps(df: pd.DataFrame) -> list[str]:
    """Each record's results.record.relative_step."""
    steps = df["step"] if "step" in df else [None] * len(df)
    return [relative_step(s, e) for s, e in zip(steps, df["eps"])]


def _pairs(df: pd.DataFrame, stronger: str, weaker: str):
    """(eps, record of `stronger`, record of `weaker`) at every eps and relative step both were run at (the
    latest of each): PGD-10 at the paper's step of 8/255 is not the PGD-10 whose 50-step or adaptive version ran at
    2/255."""
    def keyed(attack: str) -> pd.DataFrame:
        d = df[df["attack"] == attack]
        d = d.assign(_key=[f"{float(e):.8f}|{r}" for e, r in zip(d["eps"], relative_steps(d))])
        return d.drop_duplicates("_key", keep="last").set_index("_key", drop=False)

    a, b = keyed(stronger), keyed(weaker)
    for key in a.index.intersection(b.index):
        yield a.loc[key, "eps"], a.loc[key], b.loc[key]


@CHECKS.register("adaptive-above-oblivious", help="an attack that knows the defense should not do worse")
def adaptive_above(df: pd.DataFrame):
    out = []
    for steps in ("10", "50"):
        for eps, ada, obl in _pairs(df, f"adaptive-pgd{steps}", f"pgd{steps}"):
            out.append(Candidate(((f"adaptive-pgd{steps}", eps), (f"pgd{steps}", eps)),
                                 f"{_named(df, ada)} {ada['robust_acc']:.1f}% > oblivious {_named(df, obl)} "
                                 f"{obl['robust_acc']:.1f}%", symptom_p(ada, obl), steps=(step_of(ada), step_of(obl))))
    return out


@CHECKS.register("pgd50-above-pgd10", help="more PGD steps should not help the defense beyond noise")
def more_steps(df: pd.DataFrame):
    return [Candidate((("pgd50", eps), ("pgd10", eps)), f"{_named(df, p50)} {p50['robust_acc']:.1f}% > "
                      f"{_named(df, p10)} {p10['robust_acc']:.1f}%", symptom_p(p50, p10),
                      steps=(step_of(p50), step_of(p10))) for eps, p50, p10 in _pairs(df, "pgd50", "pgd10")]


@CHECKS.register("blackbox-beats-whitebox", help="a black-box attack (SPSA, a catalog Square or HopSkipJump, a "
                 "transfer attack) should not beat the strongest gradient attack that sees the defended predictor "
                 "(white-box, or adaptive for a randomised defense)")
def blackbox(df: pd.DataFrame):
    """Each black-box attack's record (its kind) against the strongest white-box / adaptive attack at its eps. A
    randomised defense's oblivious PGD is not that attack (it sees F_w only): a black-box attack below it is
    `oblivious-overstates`' finding, not a weak white-box."""
    out = []
    white = df[df["threat_model"].isin(["white-box", "adaptive"]) & df["robust_acc"].notna()]
    black = df[_rows_of(df, black_box_attack) & df["robust_acc"].notna()]
    for _, bb in black.drop_duplicates(["attack", "eps"], keep="last").iterrows():
        same_eps = white[np.isclose(white["eps"].astype(float), float(bb["eps"]))]
        if same_eps.empty:
            continue
        best = same_eps.loc[same_eps["robust_acc"].astype(float).idxmin()]  # the black box must beat even this one
        label = "SPSA" if bb["attack"] == "spsa" else _named(df, bb)
        shown_bb, shown_best, where = shown_pair(_dict(bb), _dict(best))  # SPSA's subset: the images tested
        out.append(Candidate(((bb["attack"], bb["eps"]), (best["attack"], best["eps"])),
                             f"{label} {shown_bb:.1f}% < {_named(df, best)} {shown_best:.1f}% "
                             f"({best['threat_model']}){where}: a black-box attack beats every gradient attack",
                             symptom_p(best, bb), overstated=1, steps=(step_of(bb), step_of(best))))
    return out


@CHECKS.register("oblivious-overstates", help="a randomised defense's oblivious accuracy is significantly above "
                 "its adaptive accuracy: the oblivious number is not robustness")
def oblivious_overstates(df: pd.DataFrame):
    """Against every adaptive attack at the oblivious cell's eps (adaptive PGD, APGD, AutoAttack, the surrogate
    transfer, a catalog `adaptive:` attack), each its own comparison: any one of them significantly below it
    shows the overstatement. (Testing only the lowest would pick it for being low: on noise, the minimum of
    several equal attacks sits below their common value.)"""
    out = []
    adaptive = df[(df["threat_model"] == "adaptive") & df["robust_acc"].notna()]
    oblivious = df[(df["threat_model"] == "oblivious") & _gradient_rows(df)]
    for _, obl in oblivious.iterrows():
        same_eps = adaptive[np.isclose(adaptive["eps"].astype(float), float(obl["eps"]))]
        for _, ada in same_eps.sort_values("robust_acc").iterrows():
            # one finding per oblivious record: PGD-10 at the paper's step and at eps/4 are two (their group)
            out.append(Candidate(((obl["attack"], obl["eps"]), (ada["attack"], ada["eps"])),
                                 f"oblivious {_named(df, obl)} {obl['robust_acc']:.1f}% > adaptive {_named(df, ada)} "
                                 f"{ada['robust_acc']:.1f}%: the oblivious number overstates robustness",
                                 symptom_p(obl, ada), group=(obl["attack"], float(obl["eps"]), step_of(obl)),
                                 steps=(step_of(obl), step_of(ada))))
    return out


@CHECKS.register("not-converged", help="the largest attack budget (steps, EOT draws or restarts of a bench "
                 "converge grid, or named budgets such as pgd10 and pgd50) is still significantly below the one "
                 "before it: the attack has not converged")
def not_converged(df: pd.DataFrame):
    from varmixup_bench.runs.converge import convergence_comparisons

    out = []
    for prev, last, axis in convergence_comparisons([r.to_dict() for _, r in df.iterrows()]):
        out.append(Candidate(((prev["attack"], prev["eps"]), (last["attack"], last["eps"])),
                             f"{last['attack']} {last['robust_acc']:.1f}% < {prev['attack']} {prev['robust_acc']:.1f}%: "
                             f"more {axis} still lowers accuracy, so the attack has not converged", symptom_p(prev, last),
                             overstated=1, steps=(step_of(prev), step_of(last))))
    return out


def diagnose(frame: pd.DataFrame, alpha: float = FAMILY_ALPHA) -> list[Finding]:
    """Run every registered check on each (dataset, defense, trained model, norm) of a leaderboard frame (an L2
    radius is never compared with an L-inf one, nor one seed's model with another's), then keep the comparisons
    that Holm–Bonferroni rejects among all of them at family-wise level `alpha`."""
    candidates: list[tuple[Candidate, str, tuple]] = []
    frame = _with_models(_with_norms(frame))
    for (dataset, defense, model, norm), g in frame.groupby(["dataset", "defense", "_model", "norm"], sort=True):
        seeds = ",".join(sorted({str(s) for s in g["seed"] if pd.notna(s)})) if "seed" in g else ""
        for name in CHECKS.names():
            for cand in CHECKS.get(name)(g):
                candidates.append((cand, name, (dataset, defense, model, norm, seeds)))
    rejected = holm([c.p for c, _, _ in candidates], alpha)
    best: dict[tuple, tuple[Candidate, str, tuple]] = {}
    for (cand, name, where), hit in zip(candidates, rejected):
        if not hit:
            continue
        key = (name, where, cand.group or cand.rows)
        if key not in best or cand.p < best[key][0].p:
            best[key] = (cand, name, where)
    findings = []
    for cand, name, (dataset, defense, model, norm, seeds) in best.values():
        message = f"[L2] {cand.message}" if norm == "L2" else cand.message
        findings.append(Finding(name, dataset, defense, tuple(cand.rows), f"{message} ({p_text(cand.p)})", norm, model,
                                seeds, tuple(cand.rows[cand.overstated]), tuple(cand.steps)))
    # models are grouped by config hash; list them by seed, so a defense's seeds read 0, 1, 2
    return sorted(findings, key=lambda f: (f.dataset, f.defense, f.norm, f.seed, f.check))


def comparisons_made(frame: pd.DataFrame) -> int:
    """How many comparisons one `diagnose(frame)` decides together (the size of its Holm family)."""
    frame = _with_models(_with_norms(frame))
    return sum(len(CHECKS.get(name)(g)) for _, g in frame.groupby(["dataset", "defense", "_model", "norm"])
               for name in CHECKS.names())


def flag_frame(frame: pd.DataFrame, alpha: float = FAMILY_ALPHA, findings: list[Finding] | None = None
               ) -> pd.DataFrame:
    """Add a `flags` column naming the checks that fired on each row: `findings` (diagnose's on this frame at
    family-wise `alpha`) where the caller has them, else decided here."""
    frame = _with_norms(frame)
    findings = diagnose(frame, alpha) if findings is None else findings
    flags: dict[tuple, list[tuple[float | None, str]]] = {}  # (..., attack, eps) -> [(step, check)]
    for f in findings:
        for attack, eps, step in f.stepped_rows():
            flags.setdefault((f.dataset, f.defense, f.model, f.norm, attack, float(eps)), []).append((step, f.check))
    out = frame.copy()
    models = _with_models(frame)["_model"]
    rows = frame.to_dict("records")
    out["flags"] = [", ".join(sorted({check for step, check in flags.get((r["dataset"], r["defense"], m, r["norm"],
                                                                          r["attack"], float(r["eps"])), ())
                                      if same_step(step, r.get("step"))}))
                    for r, m in zip(rows, models)]
    return out


def _with_models(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with `_model`, the predictor each record evaluated (results.record.predictor_key: its config
    hash, and its inference settings where it has any, so one model under two lambda_MI is checked apart)."""
    return frame.assign(_model=predictor_keys(frame))


def predictor_keys(frame: pd.DataFrame) -> list[str]:
    """results.record.predictor_key of each row of a frame of records."""
    hashes = frame["config_hash"] if "config_hash" in frame else pd.Series("", index=frame.index)
    rules = frame["inference_config"] if "inference_config" in frame else pd.Series("", index=frame.index)
    return [predictor_key(h, r) for h, r in zip(hashes, rules)]


def _with_norms(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its `norm` column (leaderboard frames have it; a bare frame of records gets it here)."""
    if "norm" in frame and frame["norm"].notna().all():
        return frame
    return frame.assign(norm=record_norms(frame))
