"""`bench sweep` and `bench campaign run|status|probe|compose`: many cells at once, resumable."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from varmixup_bench.cli import console
from varmixup_bench.cli.common import (
    DataDirOpt, DeviceOpt, EpsOpt, ModelDirOpt, NoProgressOpt, NormOpt, PresetFileOpt, PresetOpt, SetOpt,
    TestSubsetOpt, ThreadsOpt, TrainSubsetOpt, WorkdirOpt, ZooDatasetOpt, ZooThreatOpt, app, base_preset,
    check_positive, norm_choice, print_records, set_threads, zoo_overrides)
from varmixup_bench.core.errors import BenchError
from varmixup_bench.runs.checks import check_before_work


@app.command()
def sweep(
    defenses: Annotated[str, typer.Option("--defenses", help="comma-separated defense specs")],
    attacks: Annotated[str, typer.Option("--attacks", help="comma-separated attacks")] = "pgd10",
    datasets: Annotated[Optional[str], typer.Option("--datasets", help="comma-separated datasets (default: the preset's)")] = None,
    seeds: Annotated[str, typer.Option("--seeds", help="comma-separated seeds")] = "0",
    eps: EpsOpt = None,
    norm: NormOpt = None,
    preset: PresetOpt = None,
    executor: Annotated[str, typer.Option(help="local (in process) | ray")] = "local",
    address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: start a local one)")] = None,
    num_cpus: Annotated[Optional[int], typer.Option("--num-cpus", help="CPUs of a local Ray cluster")] = None,
    gpus_per_task: Annotated[float, typer.Option("--gpus-per-task", help="GPUs per Ray task")] = 0.0,
    train_subset: TrainSubsetOpt = None,
    test_subset: TestSubsetOpt = None,
    epochs: Annotated[Optional[int], typer.Option(help="training epochs for every recipe (default: the preset's)")] = None,
    lambda_mi: Annotated[Optional[str], typer.Option("--lambda-mi", help="sweep lambda_MI over these values (Fig. 6b)")] = None,
    eta: Annotated[Optional[str], typer.Option(help="sweep the mixup eta over these values (Fig. 6a)")] = None,
    model_dir: ModelDirOpt = None,
    zoo_threat_model: ZooThreatOpt = None,
    zoo_dataset: ZooDatasetOpt = None,
    data_dir: DataDirOpt = None,
    set_: SetOpt = None,
    preset_file: PresetFileOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    cpus_per_task: Annotated[int, typer.Option("--cpus-per-task", help="Ray: CPUs (and torch threads) per task")] = 1,
    workdir: WorkdirOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """Train each defense once per (dataset, seed), run its attacks; cells already in the store are skipped."""
    from varmixup_bench.attacks.spec import validate_attack
    from varmixup_bench.training.data import check_dataset_name
    from varmixup_bench.core.parsing import parse_eps_list, parse_name_list, parse_number
    from varmixup_bench.runs.sweep import EXECUTORS, SweepSpec, run_sweep, variants
    from varmixup_bench.core.workdir import resolve_workdir
    from varmixup_bench.defenses import parse_defense_spec

    defense_list = [str(parse_defense_spec(d)) for d in parse_name_list(defenses, "defense")]
    attack_list = [str(validate_attack(a)) for a in parse_name_list(attacks, "attack")]
    EXECUTORS.get(executor)
    from varmixup_bench.config.preset_io import parse_set_options
    from varmixup_bench.training.runner import resolve_settings

    set_threads(threads)
    check_positive(cpus_per_task=cpus_per_task)
    base = base_preset(preset, preset_file)
    set_values = parse_set_options(set_)
    norm_v, norm_now = norm_choice(norm, base, set_values)
    if norm_v is not None:
        set_values["norm"] = norm_v
    settings = resolve_settings(base, **set_values)
    dataset_list = parse_name_list(datasets, "dataset") if datasets else [settings.dataset]
    for d in dataset_list:
        check_dataset_name(d)
    try:
        seed_list = [int(x) for x in parse_name_list(seeds, "seed")]
    except ValueError:
        raise BenchError(f"invalid --seeds {seeds!r}: expected comma-separated integers") from None
    check_positive(epochs=epochs, num_cpus=num_cpus)
    overrides = {k: v for k, v in dict(train_subset=train_subset, test_subset=test_subset, **set_values,
                                       **zoo_overrides(model_dir, zoo_threat_model, zoo_dataset)).items() if v is not None}
    lambdas = [parse_number(v, "lambda_mi") for v in parse_name_list(lambda_mi, "lambda_mi")] if lambda_mi else None
    etas = [parse_number(v, "eta") for v in parse_name_list(eta, "eta")] if eta else None
    grid = variants(lambdas, etas)
    eps_list = parse_eps_list(eps, norm_now) if eps else None
    check_before_work(defense_list, attack_list, eps_list, base, overrides, dataset_list)
    if executor == "local":  # on Ray the workers' devices count, which this machine may lack
        from varmixup_bench.training.runner import resolve_device

        resolve_device(device)
    for variant in grid:  # every swept value, checked by check_preset like any other preset value
        resolve_settings(base, **overrides, **{k: dict(v) if isinstance(v, tuple) else v for k, v in variant})
    spec = SweepSpec(defense_list, attack_list, dataset_list, seed_list, eps_list, base,
                     resolve_workdir(workdir), device, overrides, str(data_dir) if data_dir else None, not no_progress,
                     epochs, grid)
    records, skipped, seconds = run_sweep(spec, executor, {"address": address, "num_cpus": num_cpus,
                                                           "gpus_per_task": gpus_per_task,
                                                           "cpus_per_task": cpus_per_task})
    console.err.print(f"sweep: {len(records)} cell(s) run, {skipped} already in the store, {seconds:.1f} s ({executor})")
    if records:
        print_records(records)



# ---- bench campaign run|status|compose PLAN.toml (varmixup_bench.campaigns) ----

campaign_app = typer.Typer(no_args_is_help=True, help="Benchmark campaigns as data: a TOML plan of passes, "
                           "steps and claims, run resumably, its status, and its composed page.")
app.add_typer(campaign_app, name="campaign")
# rich markup would read [campaign] as a style tag and drop it: escaped
PlanArg = Annotated[Path, typer.Argument(help=r"the campaign plan (TOML: \[campaign], \[\[pass]], \[\[step]], "
                                              r"\[\[claim]])")]


@campaign_app.command("run")
def campaign_run(
    plan: PlanArg,
    executor: Annotated[str, typer.Option(help="local (in process) | ray")] = "local",
    address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: start a local one)")] = None,
    num_cpus: Annotated[Optional[int], typer.Option("--num-cpus", help="CPUs of a local Ray cluster")] = None,
    gpus_per_task: Annotated[float, typer.Option("--gpus-per-task", help="GPUs per Ray task")] = 0.0,
    cpus_per_task: Annotated[int, typer.Option("--cpus-per-task", help="Ray: CPUs (and torch threads) per task")] = 1,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    workdir: WorkdirOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """Run the plan's passes in order (cells already in the store are skipped), then its extra steps."""
    import shlex

    from varmixup_bench.campaigns.engine import run_campaign
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.core.workdir import resolve_workdir
    from varmixup_bench.runs.sweep import EXECUTORS

    loaded = load_plan(plan)  # every value checked before any work (and before the workdir is created)
    EXECUTORS.get(executor)
    check_positive(cpus_per_task=cpus_per_task, num_cpus=num_cpus)
    set_threads(threads)
    wd = resolve_workdir(workdir)
    command = shlex.join(["bench", "campaign", "run", str(plan), "--workdir", str(wd)]
                         + (["--executor", executor] if executor != "local" else [])
                         + (["--threads", str(threads)] if threads is not None else []))
    summary = run_campaign(loaded, wd, executor=executor, device=device, show_progress=not no_progress,
                           options={"address": address, "num_cpus": num_cpus, "gpus_per_task": gpus_per_task,
                                    "cpus_per_task": cpus_per_task},
                           command=command, log=lambda message: console.err.print(message, highlight=False, markup=False))
    console.err.print(f"campaign {loaded.name}: {summary.cells_run} cell(s) run, {summary.cells_skipped} already in the "
                      f"store; {len(summary.steps_run)} step(s) run, {len(summary.steps_skipped)} done before", highlight=False)


@campaign_app.command("rehearse")
def campaign_rehearse(
    plan: PlanArg,
    workdir: Annotated[Path, typer.Option(help="a new or empty folder (or an earlier rehearsal's): never a real "
                                               "campaign's workdir")],
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """Run the whole plan (every pass, step and claim) at toy budgets in a workdir of its own and compose its page,
    so that a mistake shows in minutes, not hours into the real run; its numbers mean nothing."""
    import shlex

    from varmixup_bench.campaigns.rehearse import rehearse

    set_threads(threads)
    command = shlex.join(["bench", "campaign", "rehearse", str(plan), "--workdir", str(workdir)]
                         + (["--threads", str(threads)] if threads is not None else []))
    summary, page = rehearse(plan, workdir, device=device, show_progress=not no_progress, command=command,
                             log=lambda message: console.err.print(message, highlight=False, markup=False))
    decided = sum(r["cmp"] is not None for r in page.claims)
    untestable = [f"claim {r['claim'].number}: {r['verdict']}" for r in page.claims if r["cmp"] is None]
    console.out.print(
        f"rehearsal of {plan}: {summary.cells_run} cell(s) run ({summary.cells_skipped} from an earlier rehearsal), "
        f"{len(summary.steps_run)} step(s) run; {decided} of {len(page.claims)} claim(s) decided; page {page.page}",
        highlight=False)
    if untestable or not page.complete:
        raise BenchError("the rehearsal left work undone: " + "; ".join(
            untestable + page.missing_cells + page.missing_steps))


@campaign_app.command("status")
def campaign_status(plan: PlanArg, device: DeviceOpt = "auto", workdir: WorkdirOpt = None) -> None:
    """Each pass's missing cells, measured time and forecast (models to train, evaluations to run, estimated from
    what the workdir measured), which extra steps are done, and the wall time so far with the forecast added (a
    budget's check while the campaign runs)."""
    from varmixup_bench.campaigns.estimate import estimate
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.campaigns.state import CampaignState
    from varmixup_bench.campaigns.status import cell_text, finish_text, pass_status, step_status
    from varmixup_bench.core.workdir import resolve_workdir

    def hours(seconds: float, unknown: int, count: int | None = None) -> str:
        """'2 models/VAEs: 0.50 h' or, with some unknown, '3: 0.50 h + 1 unknown' / '2 unknown'."""
        head = f"{count}: " if count is not None else ""
        if unknown and (count == unknown or not seconds):
            return f"{unknown} unknown"
        return head + f"{seconds / 3600:.2f} h" + (f" + {unknown} unknown" if unknown else "")

    loaded = load_plan(plan)
    wd = resolve_workdir(workdir)
    table = Table(title=f"campaign {loaded.name} in {wd}")
    for col in ("pass / step", "cells", "missing", "runs", "seconds", "to train (est.)", "to evaluate (est.)"):
        table.add_column(col)
    passes, steps = pass_status(loaded, wd, device), step_status(loaded, wd)
    forecast = estimate(loaded, wd, passes, device, steps)
    by_name = {est.name: est for est in forecast}

    def columns(est) -> list[str]:
        if est is None:
            return ["-", "-"]
        return [hours(*est.train_seconds(), len(est.train)) if est.train else "-",
                hours(*est.evaluate_seconds()) if est.evaluate else "-"]

    for st in passes:
        table.add_row(f"pass {st.name}", str(len(st.cells)), str(len(st.missing)), str(st.runs), f"{st.seconds:.1f}",
                      *columns(by_name.get(st.name)))
    for st in steps:
        table.add_row(f"step {st.name} ({st.kind})", "-", "done" if st.done else "to run", str(st.runs),
                      f"{st.seconds:.1f}", *columns(by_name.get(f"step {st.name}")))
    console.out.print(table)
    train = [est.train_seconds() for est in forecast]
    evals = [est.evaluate_seconds() for est in forecast]
    console.out.print(
        f"forecast for the missing cells: training {hours(sum(t for t, _ in train), sum(u for _, u in train))}, "
        f"evaluating {hours(sum(t for t, _ in evals), sum(u for _, u in evals))} (from this workdir's measured "
        f"models, VAEs and records, {sum(est.probed for est in forecast)} evaluation(s) from probes: `bench campaign "
        f"probe`; unknown: nothing measured resembles it; a step's own work beyond its evaluations, such as a plot, "
        f"not included)", highlight=False)
    wall, bound, unbounded = CampaignState(loaded.state_path(wd)).wall_seconds()
    left = sum(t for t, _ in train) + sum(t for t, _ in evals)
    unknown = sum(u for _, u in train) + sum(u for _, u in evals)
    console.out.print(
        f"wall time so far: {wall / 3600:.2f} h measured" + (
            f" and at most {bound / 3600:.2f} h more before heartbeats" + (" (one unbounded)" if unbounded else "")
            if bound or unbounded else "")
        + f"; with the forecast about {(wall + left) / 3600:.2f} h" + (
            f" to {(wall + bound + left) / 3600:.2f} h" if bound else "") + " in all"
        + (f", {unknown} estimate(s) unknown" if unknown else ""), highlight=False)
    if left:
        console.out.print(finish_text(left, unknown), highlight=False)
    missing = [f"  pass {st.name}: {cell_text(c, st.norm)}" for st in passes for c in st.missing]
    console.out.print("\n".join(["missing cells:", *missing]) if missing else "missing cells: none", highlight=False)


@campaign_app.command("probe")
def campaign_probe(
    plan: PlanArg,
    images: Annotated[int, typer.Option(help="stratified test images per probe (the forecast scales by the images "
                                        "each cell evaluates)")] = 50,
    redo: Annotated[bool, typer.Option("--redo", help="probe every kind of missing cell, also those already "
                                       "estimated")] = False,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    workdir: WorkdirOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """Measure the plan's missing evaluations that nothing stored estimates: each kind run on a few test images of
    a trained model (never training), stored in <workdir>/probes.jsonl for `bench campaign status`'s forecast."""
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.campaigns.probe import run_probes
    from varmixup_bench.core.workdir import existing_workdir

    loaded = load_plan(plan)
    set_threads(threads)
    wd = existing_workdir(workdir, lacks=", and a probe measures models trained there",
                          advice=f"run `bench campaign run {plan}` first")
    rows = run_probes(loaded, wd, images=images, device=device, redo=redo, show_progress=not no_progress,
                      log=lambda message: console.err.print(message, highlight=False, markup=False))
    table = Table(title=f"probes of {loaded.name} in {wd}")
    for col in ("kind (first missing cell)", "cells", "run on", "images", "seconds", "forecast (h)"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["kind"], str(r["cells"]), r["stand_in"] or "-", str(r.get("images", "-")),
                      f"{r['seconds']:.1f}" if "seconds" in r else r.get("error", "-"),
                      f"{r['forecast'] / 3600:.2f}" if "forecast" in r else "-")
    console.out.print(table if rows else "nothing to probe: every missing cell has an estimate (--redo probes again)")
    failed = [r for r in rows if "failed" in r]
    if failed:
        console.err.print(f"{len(failed)} probe(s) failed: the campaign would stop at these cells ("
                          + "; ".join(f"{r['kind']}: {r['failed']}" for r in failed) + ")", highlight=False, markup=False)
        raise typer.Exit(1)


@campaign_app.command("compose")
def campaign_compose(
    plan: PlanArg,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="the page (markdown; the long CSV goes "
                                                   "beside it as .csv; default <workdir>/campaign-NAME.md)")] = None,
    device: DeviceOpt = "auto",
    workdir: WorkdirOpt = None,
) -> None:
    """Write the campaign's page (header, headline, full matrix, claims, flags; PARTIAL until complete)."""
    import shlex

    from varmixup_bench.campaigns.compose import compose
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.core.workdir import existing_workdir

    loaded = load_plan(plan)
    if output is not None and output.suffix.lower() != ".md":
        raise BenchError(f"--output {output}: the page is markdown, give a .md path (the CSV goes beside it)")
    wd = existing_workdir(workdir, lacks=", so it holds no campaign", advice=f"run `bench campaign run {plan}` first")
    page = output or wd / f"campaign-{loaded.name}.md"
    command = shlex.join(["bench", "campaign", "compose", str(plan), "--workdir", str(wd), "--output", str(page)])
    done = compose(loaded, wd, page, command, device)
    state = "complete" if done.complete else (f"PARTIAL: {len(done.missing_cells)} cell(s), "
                                              f"{len(done.missing_steps)} step(s) missing")
    console.out.print(f"wrote {done.page} and {done.csv} ({state})", highlight=False)

