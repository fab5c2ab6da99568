"""`bench converge` and `bench report`: one defense under growing attack budgets, and its robustness report."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from varmixup_bench.cli import console
from varmixup_bench.cli.common import (
    DataDirOpt, DatasetOpt, DeviceOpt, EpochsOpt, NoProgressOpt, PresetFileOpt, PresetOpt, SeedOpt, SetOpt,
    TestSubsetOpt, ThreadsOpt, TrainSubsetOpt, WorkdirOpt, app, base_preset, check_positive, context, int_list,
    print_records, set_threads)
from varmixup_bench.core.errors import BenchError


def trained(defense, dataset, preset, preset_file, set_, epochs, seed, device, threads, workdir, data_dir,
            train_subset, test_subset, no_progress):
    """Validate the shared options, then train (or load) the defense: what converge and report start from."""
    from varmixup_bench.config.preset_io import parse_set_options
    from varmixup_bench.training.runner import train
    from varmixup_bench.defenses import parse_defense_spec

    parse_defense_spec(defense)
    check_positive(epochs=epochs)
    set_threads(threads)
    ctx = context(dataset, base_preset(preset, preset_file), device, seed, workdir, data_dir, False, train_subset,
                  test_subset, no_progress, **parse_set_options(set_))
    d = train(defense, ctx.dataset, workdir=ctx.workdir, preset=ctx.settings, epochs=epochs, device=ctx.device,
              show_progress=not no_progress)
    import torch

    console.err.print(f"[bold]{d.spec}[/] on {d.dataset.name}: {'trained' if d.info['trained'] else 'loaded'} "
                      f"({d.info['config_hash']}); device {ctx.device}, {torch.get_num_threads()} thread(s)")
    return d, ctx



@app.command()
def converge(
    defense: Annotated[str, typer.Option("--defense", "-d", help="RECIPE[+INFERENCE]")],
    attack: Annotated[str, typer.Option(help="the attack whose budget grows: adaptive-pgd | pgd | adaptive-apgd")] = "adaptive-pgd",
    steps: Annotated[str, typer.Option(help="attack steps, comma list")] = "10,20,50,100",
    eot: Annotated[str, typer.Option(help="EOT draws per step (randomised defenses), comma list")] = "1,8,32",
    restarts: Annotated[str, typer.Option(help="random restarts, comma list")] = "1",
    eps: Annotated[Optional[str], typer.Option(help="L-inf radius on the [0,1] scale (default: the preset's)")] = None,
    plot_output: Annotated[Optional[Path], typer.Option("--plot", help="convergence PNG (default under the workdir)")] = None,
    dataset: DatasetOpt = None,
    preset: PresetOpt = None,
    preset_file: PresetFileOpt = None,
    set_: SetOpt = None,
    epochs: EpochsOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    workdir: WorkdirOpt = None,
    data_dir: DataDirOpt = None,
    train_subset: TrainSubsetOpt = None,
    test_subset: TestSubsetOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """Attack the same images with a growing budget (steps x EOT draws x restarts): one record per budget,
    a convergence plot, and a warning when the largest budget is still significantly below the one before."""
    from varmixup_bench.runs.converge import budget_specs, plot_convergence, run_convergence, unconverged
    from varmixup_bench.core.parsing import parse_eps
    from varmixup_bench.results.store import ResultStore

    grid = dict(steps=int_list(steps, "steps"), eot=int_list(eot, "eot"), restarts=int_list(restarts, "restarts"))
    budget_specs(attack, **grid, stochastic=True)  # validates the attack and the grid before any training
    eps_v = parse_eps(eps) if eps is not None else None
    d, ctx = trained(defense, dataset, preset, preset_file, set_, epochs, seed, device, threads, workdir, data_dir,
                     train_subset, test_subset, no_progress)
    records = run_convergence(d, attack, **grid, eps=eps_v, workdir=ctx.workdir, show_progress=not no_progress)
    print_records(records)
    path = plot_output or ctx.workdir / "figures" / f"converge-{d.spec.replace('+', '_')}-{d.info['config_hash']}.png"
    plot_convergence(ResultStore(ctx.workdir).records(), path, d.spec, d.dataset.name, attack)
    console.out.print(f"wrote {path}")
    for prev, last, axis in unconverged(records):
        console.out.print(f"[yellow]not converged:[/] {last['attack']} {last['robust_acc']:.1f}% is significantly below "
                          f"{prev['attack']} {prev['robust_acc']:.1f}% (more {axis} still helps the attack)")


@app.command()
def report(
    defense: Annotated[str, typer.Option("--defense", "-d", help="RECIPE[+INFERENCE]")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="folder for report.md, report.html and "
                                                   "the PNGs (default <workdir>/reports/DEFENSE-KEY)")] = None,
    steps: Annotated[str, typer.Option(help="convergence: attack steps, comma list")] = "10,20,50",
    eot: Annotated[str, typer.Option(help="convergence: EOT draws, comma list")] = "1,8",
    restarts: Annotated[str, typer.Option(help="convergence: random restarts, comma list")] = "1",
    transfer_from: Annotated[str, typer.Option("--transfer-from", help="defense whose F_w crafts the transfer "
                                               "attack")] = "erm",
    ece_threshold: Annotated[float, typer.Option("--ece-threshold", help="calibration flag above this ECE (%)")] = 10.0,
    eps_grid: Annotated[str, typer.Option("--eps-grid", help="eps curve: L-inf radii, comma list (the preset's "
                                          "is added)")] = "0,2/255,4/255,8/255,16/255,0.5",
    skip: Annotated[str, typer.Option(help="cells to leave out, comma list of spsa, transfer, surrogate-pgd50, "
                                      "corruptions (e.g. ones another run measures)")] = "",
    dataset: DatasetOpt = None,
    preset: PresetOpt = None,
    preset_file: PresetFileOpt = None,
    set_: SetOpt = None,
    epochs: EpochsOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    workdir: WorkdirOpt = None,
    data_dir: DataDirOpt = None,
    train_subset: TrainSubsetOpt = None,
    test_subset: TestSubsetOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """One page per defense with the checklist of Carlini et al. 2019: eps curve, convergence, adaptive vs
    oblivious, black-box and transfer vs white-box, worst case over draws, corruptions, calibration; each with
    numbers, 95 % intervals and a verdict. Runs only what the store does not hold yet."""
    from varmixup_bench.runs.converge import budget_specs
    from varmixup_bench.core.parsing import parse_eps_list, parse_name_list
    from varmixup_bench.views.report import ReportOptions, check_output_folder, write_report
    from varmixup_bench.defenses import parse_defense_spec

    check_output_folder(output)  # a folder, not report.md: refused before any training
    grid = dict(steps=int_list(steps, "steps"), eot=int_list(eot, "eot"), restarts=int_list(restarts, "restarts"))
    budget_specs("adaptive-pgd", **grid, stochastic=True)
    parse_defense_spec(transfer_from)
    if ece_threshold <= 0:
        raise BenchError(f"--ece-threshold must be > 0, got {ece_threshold}")
    options = ReportOptions(steps=tuple(grid["steps"]), eot=tuple(grid["eot"]), restarts=tuple(grid["restarts"]),
                            transfer_from=transfer_from, ece_threshold=ece_threshold,
                            eps_grid=tuple(parse_eps_list(eps_grid, "Linf")),
                            skip=tuple(parse_name_list(skip, "skip")) if skip.strip() else ())
    d, ctx = trained(defense, dataset, preset, preset_file, set_, epochs, seed, device, threads, workdir, data_dir,
                     train_subset, test_subset, no_progress)
    md, page, items = write_report(d, ctx.workdir, output, options, show_progress=not no_progress)
    table = Table(title=f"robustness report: {d.spec}")
    for col in ("check", "verdict", "found"):
        table.add_column(col)
    colour = {"pass": "green", "flag": "red", "n/a": "dim"}
    for it in items:
        table.add_row(it.key, f"[{colour[it.verdict]}]{it.mark}[/]", it.reason)
    console.out.print(table)
    console.out.print(f"wrote {md} and {page}")

