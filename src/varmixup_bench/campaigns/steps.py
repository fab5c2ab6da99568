"""A campaign's extra steps, run after its passes: `report` (views.report: one defense's checklist page),
`converge` (runs.converge: a budget grid and its plot), `vae-figure` (the MMD-VAE's test reconstructions) and
`plot` (a registered plot of the records, such as vae-fidelity).

    [[step]]
    kind = "converge"          # report | converge | vae-figure | plot
    plot = "vae-fidelity"      # plot: the plot's name (bench plot's KIND); attack = "pgd10" for the curves
    name = "converge-mi"       # optional (default: kind and defense); unique
    defense = "mixup+mi"       # report, converge
    steps = [10, 20]           # report, converge: the budget grid (eot, restarts likewise)
    eps_grid = ["0", "8/255", "0.5"]  # report: the eps curve's radii (default 0, 2, 4, 8, 16/255 and 0.5)
    skip = ["corruptions"]     # report: cells to leave out (spsa, transfer, surrogate-pgd50, corruptions)
    seed = 0                   # the training seed of the model (default: the preset's)
    pass = "main"              # optional: take that pass's `set` (so the step reuses its trained model)
    set = { n_adaptive = 8 }   # optional: more preset overrides

Each kind declares its arguments with their defaults (a key not declared is an error naming the valid ones),
checks them when the plan is loaded, and runs with the plan's preset, returning the files it wrote and the
numbers the page shows (read back from the state file, e.g. a VAE's test MSE).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.registry import Registry

STEP_KEYS = ("kind", "name", "seed", "pass", "set")  # every step's own keys; each kind adds its arguments


def _images(head: str, res: dict, links: list[Path], name: str) -> list[str]:
    """The page's default line for a step: its head, then each output (a PNG shown, any other file linked)."""
    return [head] + [f"\n  ![{name}]({p})" if p.suffix == ".png" else f"\n  [{p.name}]({p})" for p in links]


@dataclass(frozen=True)
class StepKind:
    defaults: dict[str, Any]  # argument -> default (REQUIRED: must be given)
    check: Callable[[dict, Any], None]  # (args, settings): raise BenchError on a bad value
    run: Callable[["StepRun"], dict]  # -> {"outputs": [paths], "result": {numbers for the page}}
    # (head line, result, outputs copied beside the page as paths relative to it, step name) -> the page's lines
    describe: Callable[[str, dict, list[Path], str], list[str]] = _images
    # (args, settings, stochastic) -> the evaluations the step runs, (attack, eps or None, norm or None) each, for
    # the campaign forecast and probes (campaigns.estimate.step_cells); None: a step that evaluates nothing
    cells: Callable[[dict, Any, bool], list[tuple[str, float | None, str | None]]] | None = None


@dataclass
class StepRun:
    """What a step runs with: the plan, the step, the workdir and the run's device and progress choice."""

    plan: Any
    step: Any
    workdir: Path
    device: str = "auto"
    show_progress: bool = True

    def train(self):
        """The step's defense trained (or loaded from the cache) with the plan's preset and the step's settings."""
        from varmixup_bench.training.runner import train

        return train(self.step.args["defense"], self.plan.dataset, workdir=self.workdir, preset=self.step.settings,
                     device=self.device, show_progress=self.show_progress)

    def figure(self, what: str) -> Path:
        return self.workdir / "figures" / f"campaign-{self.plan.name}-{what}.png"

    def records(self) -> list[dict]:
        """The plan's records: the latest stored record of each of its passes' cells (as the page shows them), not
        every record in the workdir, which other plans, reports and convergence grids share."""
        from varmixup_bench.results.store import ResultStore

        keys = {key for p in self.plan.passes for key in self.plan.cell_keys(p, self.workdir, self.device).values()}
        latest = {r["sweep_key"]: r for r in ResultStore(self.workdir).records() if r.get("sweep_key") in keys}
        return list(latest.values())


REQUIRED = object()
STEPS: Registry[StepKind] = Registry("campaign step kind")
GRID = {"steps": [10, 20, 50], "eot": [1, 8], "restarts": [1]}


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in text)


def _grid(args: dict) -> dict[str, list[int]]:
    return {k: [int(v) for v in args[k]] for k in ("steps", "eot", "restarts")}


def _check_grid(attack: str, args: dict) -> None:
    from varmixup_bench.runs.converge import budget_specs

    for key in ("steps", "eot", "restarts"):
        values = args[key]
        if not isinstance(values, list) or not values or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            raise BenchError(f"{key} must be a non-empty list of integers >= 1, got {values!r}")
    budget_specs(attack, **_grid(args), stochastic=True)


def _check_defense(args: dict, settings) -> None:
    from varmixup_bench.defenses import parse_defense_spec

    spec = parse_defense_spec(args["defense"])
    spec.trained_recipe(settings)
    spec.build_rule(settings)


def _check_report(args: dict, settings) -> None:
    from varmixup_bench.defenses import parse_defense_spec

    _check_defense(args, settings)
    _check_grid("adaptive-pgd", args)
    parse_defense_spec(args["transfer_from"])
    if isinstance(args["ece_threshold"], bool) or not isinstance(args["ece_threshold"], (int, float)) \
            or not args["ece_threshold"] > 0:
        raise BenchError(f"ece_threshold must be a number > 0, got {args['ece_threshold']!r}")
    for key in ("eps_grid", "skip"):
        value = args[key]
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise BenchError(f"{key} must be a list of strings, e.g. {key} = "
                             f"{['0', '8/255', '0.5'] if key == 'eps_grid' else ['corruptions']}, got {value!r}")
    _report_options(args)  # the radii parse, the skipped cells exist


def _report_options(a: dict):
    from varmixup_bench.core.parsing import parse_eps
    from varmixup_bench.views.report import EPS_GRID, ReportOptions

    grid = EPS_GRID if a["eps_grid"] is None else tuple(parse_eps(str(e), "Linf") for e in a["eps_grid"])
    return ReportOptions(**{k: tuple(v) for k, v in _grid(a).items()}, transfer_from=a["transfer_from"],
                         ece_threshold=float(a["ece_threshold"]), eps_grid=grid, skip=tuple(a["skip"] or ()))


def _report_cells(a: dict, settings, stochastic: bool) -> list[tuple[str, float | None, str | None]]:
    from varmixup_bench.views.report import report_cells

    eps = float(settings.eps_for("Linf"))  # as build_report: the preset's radius, else the dataset's
    return [(c.attack, c.eps, c.norm) for c in report_cells(eps, stochastic, _report_options(a))]


def _run_report(run: StepRun) -> dict:
    from varmixup_bench.views.report import write_report

    d = run.train()
    md, _page, items = write_report(d, run.workdir, None, _report_options(run.step.args),
                                    show_progress=run.show_progress)
    verdicts = {v: sum(it.verdict == v for it in items) for v in ("pass", "flag", "n/a")}
    return {"outputs": [str(md.parent)], "result": {"model": d.info["config_hash"], **verdicts}}


def _describe_report(head: str, res: dict, links: list[Path], name: str) -> list[str]:
    if not links:
        return [head]
    return [f"{head}: [report]({links[0] / 'report.md'}), checklist {res.get('pass', 0)} pass, "
            f"{res.get('flag', 0)} flag, {res.get('n/a', 0)} n/a"]


STEPS.register("report", help="bench report: one defense's checklist page (runs what the store lacks)")(
    StepKind({"defense": REQUIRED, **GRID, "transfer_from": "erm", "ece_threshold": 10.0, "eps_grid": None,
              "skip": []}, _check_report,
             _run_report, _describe_report, _report_cells))


def _check_converge(args: dict, settings) -> None:
    from varmixup_bench.core.parsing import parse_eps

    _check_defense(args, settings)
    if not isinstance(args["attack"], str):
        raise BenchError(f"attack must be a name such as adaptive-pgd, got {args['attack']!r}")
    _check_grid(args["attack"], args)
    if args["eps"] is not None:
        parse_eps(str(args["eps"]), settings.norm)


def _run_converge(run: StepRun) -> dict:
    from varmixup_bench.core.parsing import parse_eps
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.runs.converge import plot_convergence, run_convergence, unconverged

    a = run.step.args
    d = run.train()
    eps = parse_eps(str(a["eps"]), run.step.settings.norm) if a["eps"] is not None else None
    records = run_convergence(d, a["attack"], **_grid(a), eps=eps, workdir=run.workdir,
                              show_progress=run.show_progress)
    path = run.figure(f"converge-{_slug(d.spec)}-{d.info['config_hash']}")
    plot_convergence(ResultStore(run.workdir).records(), path, d.spec, d.dataset.name, a["attack"])
    behind = [f"{last['attack']} {last['robust_acc']:.1f} % < {prev['attack']} {prev['robust_acc']:.1f} % ({axis})"
              for prev, last, axis in unconverged(records)]
    return {"outputs": [str(path)], "result": {"model": d.info["config_hash"], "budgets": len(records),
                                               "not_converged": behind}}


def _describe_converge(head: str, res: dict, links: list[Path], name: str) -> list[str]:
    behind = res.get("not_converged") or []
    verdict = "not converged: " + "; ".join(behind) if behind else "no budget significantly below the one before"
    return _images(f"{head}: {res.get('budgets')} budgets; {verdict}", res, links, name)


STEPS.register("converge", help="bench converge: a defense attacked with a growing budget, and its plot")(
    StepKind({"defense": REQUIRED, "attack": "adaptive-pgd", **GRID, "eps": None}, _check_converge, _run_converge,
             _describe_converge))


def _check_vae(args: dict, settings) -> None:
    if not isinstance(args["adversarial"], bool):
        raise BenchError(f"adversarial must be true or false, got {args['adversarial']!r}")


def _run_vae(run: StepRun) -> dict:
    import torch

    from varmixup_bench.defenses.latent import get_vae, reconstruction_error
    from varmixup_bench.training.runner import make_context
    from varmixup_bench.views.figures import save_rows, vae_rows

    ctx = make_context(run.plan.dataset, workdir=run.workdir, preset=run.step.settings, device=run.device,
                       show_progress=run.show_progress)
    vae = get_vae(ctx, run.step.args["adversarial"], train_if_missing=True)
    test = ctx.dataset.test
    path = run.figure(f"vae-{vae.key}")
    shown = torch.linspace(0, len(test.x) - 1, min(16, len(test.x))).long()  # across the (class-sorted) split
    save_rows(vae_rows(vae, test.x[shown].to(ctx.device)), path)
    hist = vae.meta.get("history", [])
    return {"outputs": [str(path)], "result": {
        "vae": vae.key, "adversarial": run.step.args["adversarial"], "latent_dim": vae.latent_dim,
        "epochs": len(hist), "test_mse": reconstruction_error(vae, test.x, ctx.device),
        "seconds_trained": float(vae.meta.get("seconds", 0.0)), "trained": bool(vae.trained)}}


def _describe_vae(head: str, res: dict, links: list[Path], name: str) -> list[str]:
    kind = "adversarial " if res.get("adversarial") else ""
    return _images(f"{head}: {kind}MMD-VAE `{res.get('vae')}`, latent {res.get('latent_dim')}, {res.get('epochs')} "
                   f"epochs, test pixel MSE {res.get('test_mse'):.5f}", res, links, name)


STEPS.register("vae-figure", help="the MMD-VAE of the Var* defenses: test images over their reconstructions")(
    StepKind({"adversarial": False}, _check_vae, _run_vae, _describe_vae))


def _check_plot(args: dict, settings) -> None:
    from varmixup_bench.views.plots import PLOTS

    PLOTS.get(str(args["plot"]))  # an unknown plot name is an error naming the valid ones
    if args["attack"] is not None and not isinstance(args["attack"], str):
        raise BenchError(f"attack must be an attack name, got {args['attack']!r}")


def _run_plot(run: StepRun) -> dict:
    from varmixup_bench.training.data import canonical_dataset_name
    from varmixup_bench.views.plots import plot

    a = run.step.args
    path = plot(run.records(), a["plot"], run.figure(_slug(a["plot"])), a["attack"],
                canonical_dataset_name(run.plan.dataset))
    outputs = [str(path)] + [str(p) for p in [path.with_suffix(".csv")] if p.exists()]  # a view's table, if any
    return {"outputs": outputs, "result": {"plot": a["plot"]}}


STEPS.register("plot", help="bench plot: a registered plot of the plan's records, its passes' cells (vae-fidelity "
               "also writes its table)")(StepKind({"plot": REQUIRED, "attack": None}, _check_plot, _run_plot))
