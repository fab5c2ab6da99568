"""Attack convergence: the same images attacked with a growing budget (steps × EOT draws × restarts).

Each budget point is an ordinary record whose attack is the spec `adaptive-pgd(eot=E,restarts=R,steps=S)`, so
it is stored, cached (run once per evaluation key), compared and diagnosed like any other. A converged attack
gives accuracies that stop falling; the `not-converged` diagnostic fires when the largest budget on an axis is
still significantly below the one before it."""
from __future__ import annotations

from itertools import product
from pathlib import Path
from typing import Any, Iterator

from varmixup_bench.attacks.spec import AttackSpec, attack_class, parse_attack_spec
from varmixup_bench.core.errors import BenchError
from varmixup_bench.results.record import relative_step

DEFAULT_STEPS = (10, 20, 50, 100)
DEFAULT_EOT = (1, 8, 32)
DEFAULT_RESTARTS = (1,)
AXES = ("steps", "eot", "restarts")


def budget_specs(attack: str, steps, eot, restarts, stochastic: bool) -> list[str]:
    """The attack specs of the grid; a deterministic defense has one draw, so its EOT axis collapses to 1."""
    base = parse_attack_spec(attack)
    if base.args:
        raise BenchError(f"--attack {attack}: give the attack's name only; the budget comes from --steps, --eot "
                         "and --restarts")
    params = attack_class(base).parameters()
    missing = [a for a in ("steps", "restarts") if a not in params]
    if missing:
        raise BenchError(f"--attack {attack} has no {' or '.join(missing)} budget; use one of "
                         "adaptive-pgd, pgd, adaptive-apgd")
    for name, values in (("steps", steps), ("eot", eot), ("restarts", restarts)):
        if not values or any(int(v) < 1 for v in values):
            raise BenchError(f"--{name} values must be integers >= 1, got {values}")
    has_eot = "eot" in params
    eot_axis = sorted(set(eot)) if has_eot and stochastic else [None]
    out = []
    for s, e, r in product(sorted(set(steps)), eot_axis, sorted(set(restarts))):
        args = {"steps": int(s), "restarts": int(r)}
        if e is not None:
            args["eot"] = int(e)
        out.append(str(AttackSpec(base.name, tuple(sorted(args.items())))))
    return out


def run_convergence(defense, attack: str = "adaptive-pgd", *, steps=DEFAULT_STEPS, eot=DEFAULT_EOT,
                    restarts=DEFAULT_RESTARTS, eps: float | None = None, norm: str | None = None,
                    workdir=None, show_progress: bool = True) -> list[dict[str, Any]]:
    """Evaluate (or read from the store) every budget of the grid on the defense's test images."""
    from varmixup_bench.training.runner import stored_or_evaluate

    test = defense.dataset.test
    stochastic = defense.verify_randomness(test.x[:min(len(test), 64)].to(defense.device))
    return [stored_or_evaluate(defense, spec, eps=eps, norm=norm, workdir=workdir, show_progress=show_progress)
            for spec in budget_specs(attack, steps, eot, restarts, stochastic)]


def budget(rec: dict) -> dict[str, int] | None:
    """{'steps', 'eot', 'restarts'} of a budget record (None for records without a steps budget)."""
    from varmixup_bench.results.record import field_value

    cfg = field_value(rec.get("attack_config"))
    if not isinstance(cfg, dict) or "steps" not in cfg:
        return None
    eot = cfg.get("eot") if rec.get("stochastic") else 1
    return {"steps": int(cfg["steps"]), "eot": int(eot or 1), "restarts": int(cfg.get("restarts", 1))}


def base_name(attack: str) -> str:
    return str(attack).split("(")[0]


def budget_family(attack: str) -> str | None:
    """The budgeted family whose grid an attack is a point of: `adaptive-pgd` for `adaptive-pgd(eot=32,steps=10)`
    and for the named budgets `adaptive-pgd10` and `adaptive-pgd50` alike (a preset that fixes only parameters,
    attacks.spec.preset_family), so that PGD-50 stored beside PGD-10 is a convergence check too; None for an
    attack with no steps and restarts budget."""
    from varmixup_bench.attacks.spec import preset_family

    try:
        cls = attack_class(parse_attack_spec(str(attack)))
    except Exception:  # noqa: BLE001 (a record of an attack no longer registered: not a grid point)
        return None
    if not {"steps", "restarts"} <= set(cls.parameters()):
        return None
    return preset_family(cls) or base_name(attack)


def grid_lines(records: list[dict]) -> Iterator[tuple[str, list[str], tuple, list[tuple[int, dict]]]]:
    """Every line of a budget grid: (axis, the other axes, the line's key, [(budget on the axis, record)] sorted
    by that budget), holding the other budgets (and the attack family and eps) fixed."""
    families = {a: budget_family(a) for a in {str(r.get("attack")) for r in records}}
    points = [(r, budget(r)) for r in records]
    points = [(r, b) for r, b in points if b is not None and families[str(r.get("attack"))] is not None]
    for axis in AXES:
        others = [a for a in AXES if a != axis]
        groups: dict[tuple, list] = {}
        for r, b in points:
            # and the relative step: PGD-10 at the paper's step of 8/255 is no point of the eps/4 grid of PGD-50
            key = (families[str(r["attack"])], round(float(r.get("eps", 0)), 8),
                   relative_step(r.get("step"), r.get("eps")), *(b[o] for o in others))
            groups.setdefault(key, []).append((b[axis], r))
        for key, line in groups.items():
            # one point per budget: a budget spec stored as the copy (`same_as`) of the named attack that runs it
            # exactly is that attack's record again, not a second point
            one = {}
            for value, r in sorted(line, key=lambda t: (t[0], bool(t[1].get("same_as")))):
                one.setdefault(value, (value, r))
            yield axis, others, key, list(one.values())


def convergence_comparisons(records: list[dict]) -> list[tuple[dict, dict, str]]:
    """(previous, largest, axis) for every line of the grid: holding the other budgets fixed, the largest value
    of an axis and the one before it; the caller tests whether the largest is below."""
    return [(line[-2][1], line[-1][1], axis) for axis, _, _, line in grid_lines(records)
            if len(line) >= 2 and line[-1][0] != line[-2][0]]


def unconverged(records: list[dict]) -> list[tuple[dict, dict, str]]:
    """(previous, largest, axis) where the largest value of an axis is significantly below the one before it
    (paired on the same images where possible), the grid's comparisons decided together with Holm–Bonferroni
    at the family-wise level varmixup_bench.results.stats.FAMILY_ALPHA."""
    from varmixup_bench.results.stats import FAMILY_ALPHA, compare_records, holm

    pairs = convergence_comparisons(records)
    cmps = [compare_records(prev, last) for prev, last, _ in pairs]
    reject = holm([c.p if c.diff > 0 else 1.0 for c in cmps], FAMILY_ALPHA)
    return [pair for pair, hit in zip(pairs, reject) if hit]


def plot_convergence(records: list[dict], path: Path, defense: str | None = None, dataset: str | None = None,
                     attack: str | None = None) -> Path:
    """Accuracy against steps, one line per (EOT draws, restarts) and training seed (points of different seeds'
    models are never joined), 95 % intervals as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    latest = _latest_budgets(records, defense, dataset, attack)
    lines: dict[tuple, list] = {}
    for (d, seed, a, e, eot, rs, s), r in sorted(latest.items()):
        lines.setdefault((d, seed, a, e, eot, rs), []).append((s, r))
    seeds = {k[1] for k in lines}
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for i, (key, pts) in enumerate(lines.items()):
        d, seed, a, e, eot, rs = key
        xs = [s for s, _ in pts]
        ys = [float(r["robust_acc"]) for _, r in pts]
        lo = [y - float(r.get("robust_acc_ci_low", y)) for y, (_, r) in zip(ys, pts)]
        hi = [float(r.get("robust_acc_ci_high", y)) - y for y, (_, r) in zip(ys, pts)]
        label = f"{a} EOT {eot}" + (f", {rs} restarts" if rs > 1 else "") + (f", seed {seed}" if len(seeds) > 1 else "")
        if len({k[0] for k in lines}) > 1:
            label = f"{d}: {label}"
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="osD^v<>"[i % 7], capsize=3, label=label)
    ax.set_xscale("log")
    measured = sorted({s for pts in lines.values() for s, _ in pts})
    ax.set_xticks(measured, [str(s) for s in measured])  # ticked at the step counts run, not at 10 and 100
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set(xlabel="attack steps", ylabel="robust accuracy (%) [95 % CI]",
           title="convergence" + (f" — {defense}" if defense else ""))
    from varmixup_bench.views.plots import save_figure

    return save_figure(fig, ax, path)


def _latest_budgets(records: list[dict], defense: str | None, dataset: str | None, attack: str | None) -> dict:
    """{(defense, seed, attack, eps, eot, restarts, steps): latest record} of the budget records asked for."""
    latest: dict[tuple, dict] = {}
    for r in sorted(records, key=lambda r: r.get("timestamp", "")):
        b = budget(r)
        if b is None or "(" not in str(r.get("attack")) or (defense and r.get("defense") != defense) \
                or (dataset and r.get("dataset") != dataset) or (attack and base_name(r["attack"]) != attack):
            continue
        latest[(r["defense"], int(r.get("seed") or 0), base_name(r["attack"]), float(r.get("eps", 0)), b["eot"],
                b["restarts"], b["steps"])] = r
    if not latest:
        raise BenchError("no convergence records" + (f" for {defense}" if defense else "")
                         + " (run bench converge first)")
    return latest


def budget_differences(records: list[dict]) -> list[dict[str, Any]]:
    """Every step between successive budgets of one model's grid, holding the other axes fixed: the paired
    difference larger − smaller in points with its 95 % interval (the test of varmixup_bench.results.stats on the same images),
    and `tested`: whether it is the step the `not-converged` check decides (the largest budget against the one
    before it). Two accuracies' intervals can overlap completely while their paired difference is clearly
    below 0: the images are the same, so their sampling error largely cancels in the difference."""
    from varmixup_bench.results.stats import Z95, compare_records

    tested = {(id(prev), id(last)) for prev, last, _ in convergence_comparisons(records)}
    out = []
    for axis, others, key, line in grid_lines(records):
        fixed = ", ".join(f"{o} {v}" for o, v in zip(others, key[2:]) if not (o == "restarts" and v == 1))
        for (va, a), (vb, b) in zip(line, line[1:]):
            if va == vb:
                continue
            cmp = compare_records(b, a)
            out.append({"axis": axis, "from": va, "to": vb, "fixed": fixed, "diff": cmp.diff,
                        "low": cmp.diff - Z95 * cmp.se, "high": cmp.diff + Z95 * cmp.se, "p": cmp.p,
                        "paired": cmp.paired, "tested": (id(a), id(b)) in tested,
                        "label": f"{axis} {va}→{vb}" + (f" ({fixed})" if fixed else "")})
    return out


def plot_convergence_differences(records: list[dict], path: Path, defense: str | None = None,
                                 dataset: str | None = None, attack: str | None = None) -> Path:
    """What the `not-converged` check tests, drawn: the paired difference between successive budgets (larger −
    smaller, points) with its 95 % interval, one row per step of the grid; the rows the check decides are
    filled. An interval wholly left of 0 means the larger budget is significantly below the smaller one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = list(_latest_budgets(records, defense, dataset, attack).values())
    rows = budget_differences(grid)
    if not rows:
        raise BenchError("a convergence grid needs at least two budgets on one axis for paired differences")
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.35 * len(rows)))
    for i, row in enumerate(rows):
        ax.errorbar([row["diff"]], [i], xerr=[[row["diff"] - row["low"]], [row["high"] - row["diff"]]], capsize=3,
                    marker="o", color="C3" if row["tested"] else "C0",
                    markerfacecolor=None if row["tested"] else "white",
                    label=("decided by not-converged" if row["tested"] else "other successive budgets")
                    if i == next(j for j, r in enumerate(rows) if r["tested"] == row["tested"]) else None)
    ax.axvline(0, color="gray", linewidth=1)
    ax.set_yticks(range(len(rows)), [r["label"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    paired = all(r["paired"] for r in rows)
    ax.set(xlabel="accuracy change, larger − smaller budget (points) [95 % CI"
           + (", paired on the same images]" if paired else "]"),
           title="convergence: paired differences" + (f" — {defense}" if defense else ""))
    from varmixup_bench.views.plots import save_figure

    return save_figure(fig, ax, path)
