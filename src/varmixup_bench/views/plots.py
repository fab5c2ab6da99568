"""PNG plots from the results store: robust accuracy against eps, the lambda_MI and eta sweeps (paper Fig. 6)
and local linearity curves (Fig. 4). Each plot is a registered view of the records."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from varmixup_bench.core.atomic import atomic_write
from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.registry import Registry
from varmixup_bench.results.record import eps_text, record_norm, relative_step
from varmixup_bench.results.stats import value_interval

XGetter = Callable[[dict], float | None]
PLOTS: Registry[dict[str, Any]] = Registry("plot")


def _register(name: str, help: str, x: XGetter, y: str, xlabel: str, ylabel: str, attack_filter: bool) -> None:
    PLOTS.register(name, help=help)({"x": x, "y": y, "xlabel": xlabel, "ylabel": ylabel, "attack": attack_filter})


_register("eps", "robust accuracy against eps, one line per defense (--attack, default pgd10)",
          lambda r: r.get("eps"), "robust_acc", "ε (L∞, [0,1] scale; log axis)", "robust accuracy (%)", True)
_register("lambda-mi", "robust accuracy against lambda_MI of MI / VarMI (bench sweep --lambda-mi), Fig. 6b",
          lambda r: (r.get("inference_config") or {}).get("lambda_mi"), "robust_acc", "λ_MI", "robust accuracy (%)", True)
_register("eta", "robust accuracy against eta of Beta(eta, eta) (bench sweep --eta), Fig. 6a",
          lambda r: ((r.get("train_config") or {}).get("recipe_config") or {}).get("eta"), "robust_acc", "η",
          "robust accuracy (%)", True)
_register("linearity", "local linearity error gamma(eps) against eps (attack `linearity`), Fig. 4",
          lambda r: r.get("eps") if r.get("attack") == "linearity" else None, "value", "ε (L∞; log axis)", "local linearity γ(ε)", False)


PLOTS.register("converge", help="robust accuracy against attack steps, one line per EOT count and restarts "
               "(bench converge; --defense)")({"plotter": "varmixup_bench.runs.converge:plot_convergence", "attack": True})


PLOTS.register("vae-fidelity", help="Var* accuracies against their MMD-VAE's test PSNR (attack vae-psnr), with "
               "intervals; writes the table beside the PNG (.csv)")({"plotter": "varmixup_bench.views.fidelity:plot_fidelity",
                                                                  "attack": False})


def _model_of_line(r: dict, kind: str) -> dict:
    """What a line's records share: the trained model (its training settings), less the swept setting where the
    sweep is a training setting (eta: each point is its own model) — so an eta line joins the models that differ
    in eta only, and a lambda_MI line is one model under several inference settings."""
    import copy

    from varmixup_bench.results.record import _without_seeds, field_value

    tc = copy.deepcopy(field_value(r.get("train_config")) or {})
    if kind == "eta":  # the models of one line differ in eta; their inference (lambda_MI) is one
        (tc.get("recipe_config") or {}).pop("eta", None)
        return {"train_config": tc, "preset": r.get("preset"),
                "inference": _without_seeds(field_value(r.get("inference_config")))}
    return {"train_config": tc, "preset": r.get("preset"), "config_hash": r.get("config_hash")}


def curves(records: list[dict], kind: str, attack: str = "pgd10", dataset: str | None = None) -> dict[str, list]:
    """{line: [(x, y, (below, above)), ...]} sorted by x, the latest record per point of a line; the error bar is
    the record's 95 % interval (its trial std for records without one). A line is one trained model (an eta line:
    the models that differ in eta only) at one training seed and, where x is not the radius, at one radius: never
    points of different seeds' models, of another eta's model at a lambda_MI point, or of another eps joined up.
    Where a defense has several seeds, its lines are the seed with the most points (ties: the lowest), labelled
    `defense (seed s)`; several models or radii of one defense say what differs. On a sweep plot (lambda_MI,
    eta) a line of one point is no sweep and is left out when any line has two."""
    import json

    from varmixup_bench.results.record import differing_fields

    spec = PLOTS.get(kind)
    x_is_eps = kind in ("eps", "linearity")
    latest: dict[tuple, dict] = {}
    models: dict[str, dict] = {}
    chosen = []
    for r in sorted(records, key=lambda r: r.get("timestamp", "")):
        if dataset and r.get("dataset") != dataset:
            continue
        if spec["attack"] and r.get("attack") != attack:
            continue
        x = spec["x"](r)
        if x is None or r.get(spec["y"]) is None:
            continue
        radius = None if x_is_eps else round(float(r.get("eps") or 0.0), 8)
        model = json.dumps(_model_of_line(r, kind), sort_keys=True, default=str)
        models[model] = _model_of_line(r, kind)
        line = (r["defense"], int(r.get("seed") or 0), model, radius)
        chosen.append((line, float(x), r, relative_step(r.get("step"), r.get("eps"))))
    # on an eps curve, one step rule per line: at each radius the record of the relative step most of the line's
    # radii share (PGD-10 at the paper's 8/255 beside the eps/4 curve is no point of it), else the latest
    radii: dict[tuple, dict[str, set]] = {}
    for line, x, _, step in chosen:
        radii.setdefault(line, {}).setdefault(step, set()).add(x)
    rule = {line: max(steps.items(), key=lambda kv: len(kv[1]))[0] for line, steps in radii.items()} if x_is_eps else {}
    for line, x, r, step in chosen:
        if (line, x) in latest and line in rule and step != rule[line]:
            continue  # an off-rule record never replaces the rule's at this point
        latest[(line, x)] = r
    by_line: dict[tuple, list] = {}
    norms: dict[tuple, str] = {}
    for (line, x), r in sorted(latest.items(), key=lambda kv: (kv[0][0][:2], kv[0][0][2:], kv[0][1])):
        y = float(r[spec["y"]])
        if spec["y"] == "robust_acc" and r.get("robust_acc_ci_low") is not None:
            # the 95 % interval (clamped: at 0 % or 100 % a bound can sit a rounding error past the mean)
            err = (max(0.0, y - float(r["robust_acc_ci_low"])), max(0.0, float(r["robust_acc_ci_high"]) - y))
        elif spec["y"] == "value" and (ci := value_interval(r)) is not None:  # γ: its 95 % interval too
            err = (max(0.0, y - ci[0]), max(0.0, ci[1] - y))
        else:
            sd = float(r.get("robust_acc_std") or 0.0) if spec["y"] == "robust_acc" else 0.0
            err = (sd, sd)
        by_line.setdefault(line, []).append((x, y, err))
        norms[line] = record_norm(r)
    if not x_is_eps and any(len(pts) > 1 for pts in by_line.values()):
        by_line = {line: pts for line, pts in by_line.items() if len(pts) > 1}
    by_defense: dict[str, list[tuple]] = {}
    for line in by_line:
        by_defense.setdefault(line[0], []).append(line)
    out: dict[str, list] = {}
    for defense, lines in by_defense.items():
        seeds = sorted({s for _, s, _, _ in lines})
        # one seed per defense: the one with the most points (max keeps the lowest of a tie)
        seed = max(seeds, key=lambda s: sum(len(by_line[c]) for c in lines if c[1] == s))
        chosen = [c for c in lines if c[1] == seed]
        what = differing_fields([{k: v for k, v in models[c[2]].items() if k != "config_hash"} for c in chosen],
                                ["train_config", "preset", "inference"]) if len(chosen) > 1 else [""] * len(chosen)
        for c, d in zip(chosen, what):
            radius = c[3]
            parts = [p for p in (d, f"ε={eps_text(radius, norms[c])}" if radius is not None and len(
                {r for _, _, _, r in chosen}) > 1 else "") if p]
            label = defense + (f" [{', '.join(parts)}]" if parts else "") + (f" (seed {seed})" if len(seeds) > 1 else "")
            while label in out:  # lines nothing above tells apart are still two lines
                label += "'"
            out[label] = by_line[c]
    return out


def plot(records: list[dict], kind: str, path: Path, attack: str | None = None, dataset: str | None = None,
         defense: str | None = None, norm: str = "Linf") -> Path:
    spec = PLOTS.get(kind)
    if "plotter" in spec:  # a plot with its own layout
        from importlib import import_module

        module, _, fn = spec["plotter"].partition(":")
        return getattr(import_module(module), fn)(records, path, defense, dataset, attack)
    fig, ax = figure(records, kind, attack, dataset, defense, norm)
    return save_figure(fig, ax, path)


def figure(records: list[dict], kind: str, attack: str | None = None, dataset: str | None = None,
           defense: str | None = None, norm: str = "Linf"):
    """(figure, axes) of a registered curve plot, not yet saved (`plot` saves it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = PLOTS.get(kind)
    attack = attack or "pgd10"
    if defense:
        records = [r for r in records if r.get("defense") == defense]
    records = [r for r in records if record_norm(r) in (norm, "none")]  # one threat model's radii per plot
    data = curves(records, kind, attack, dataset)
    if not data:
        raise BenchError(f"no records for a {kind} plot" + (f" of attack {attack}" if spec["attack"] else "")
                         + (" in L2" if norm == "L2" else "") + (f" on {dataset}" if dataset else ""))
    fig, ax = plt.subplots(figsize=(7.5, 4))
    colors = plt.get_cmap("tab20").colors  # 20 distinct colours, and markers/dashes vary too: no two lines alike
    for i, (defense, pts) in enumerate(data.items()):
        xs, ys, err = zip(*pts)
        ax.errorbar(xs, ys, yerr=[[e[0] for e in err], [e[1] for e in err]], marker="osD^v<>"[i % 7], capsize=2,
                    color=colors[(2 * i) % 20 + (i // 10) % 2], linestyle=("-", "--", ":")[(i // 7) % 3], label=defense)
    xlabel = spec["xlabel"].replace("L∞", "L2") if norm == "L2" else spec["xlabel"]
    ax.set(xlabel=xlabel, ylabel=spec["ylabel"],
           title=f"{kind}" + (f" ({attack}{', L2' if norm == 'L2' else ''})" if spec["attack"] else "")
           + (f" — {dataset}" if dataset else ""))
    if kind in ("eps", "linearity"):
        radius_axis(ax, sorted({x for pts in data.values() for x, _, _ in pts}), norm)
    return fig, ax


def radius_axis(ax, radii: list[float], norm: str = "Linf") -> None:
    """ε on a symmetric-log axis (linear only below the smallest non-zero radius, so ε = 0 has a place) ticked at
    the radii measured: 2, 4, 8, 16/255 and 0.5 get comparable room instead of 2–16/255 sharing an eighth of a
    linear axis that runs to 0.5."""
    from matplotlib.ticker import NullLocator

    positive = [r for r in radii if r > 0]
    if not positive:
        return
    ax.set_xscale("symlog", linthresh=min(positive), linscale=0.5)
    ax.set_xticks(radii, [eps_text(r, norm).removeprefix("L2 ") for r in radii], fontsize=8,
                  rotation=45 if len(radii) > 7 else 0)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(-0.05 * min(positive) if 0 in radii else min(positive) / 1.3, max(radii) * 1.3)


def save_figure(fig, ax, path: Path) -> Path:
    """Grid, legend outside the axes, and an atomic PNG write: the finish every plot shares."""
    import matplotlib.pyplot as plt

    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return Path(path)
