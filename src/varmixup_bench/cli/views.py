"""`bench leaderboard`, `bench diagnose`, `bench plot`: tables, checks and figures of the recorded results."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from varmixup_bench.cli import console
from varmixup_bench.cli.common import OutputOpt, WorkdirOpt, app, stored_records
from varmixup_bench.core.errors import BenchError


@app.command()
def leaderboard(
    workdir: WorkdirOpt = None,
    dataset: Annotated[Optional[str], typer.Option(help="only this dataset (default: every dataset)")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv | md | json | html | robustbench (one JSON per "
                                     "defense under --output DIR)")] = "md",
    layout: Annotated[Optional[str], typer.Option(help="headline (per dataset: clean, strongest attack, ensemble; "
                                                  "md/html) | long (one row per record) | wide (defenses x attacks); "
                                                  "default headline for md/html, long for csv/json, wide with --reference")] = None,
    reference: Annotated[Optional[str], typer.Option(help="add a transcribed reference beside ours: paper or paper:DATASET")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="write to FILE instead of stdout")] = None,
    plots: Annotated[Optional[list[Path]], typer.Option("--plot", help="html: a PNG to embed (repeatable; default: "
                                                        "the workdir's figures/*.png)")] = None,
) -> None:
    """Write the leaderboard of every recorded result (latest record per row)."""
    from varmixup_bench.core.atomic import atomic_write_text
    from varmixup_bench.views.headline import render_headline
    from varmixup_bench.views.leaderboard import FORMATS, flagged_frame, render, render_wide, wide_frame
    from varmixup_bench.core.registry import unknown_name_message
    from varmixup_bench.results.stats import family_share

    if fmt == "robustbench":
        from varmixup_bench.views.rb_export import write_robustbench

        if output is None:
            raise BenchError("--format robustbench writes one JSON per defense: give the folder with --output DIR")
        if layout or reference:
            raise BenchError("--format robustbench takes neither --layout nor --reference")
        paths = write_robustbench(stored_records(workdir, dataset)[1], output, dataset)
        console.err.print(f"wrote {len(paths)} RobustBench model_info JSON file(s) under {output}")
        return
    if fmt not in FORMATS:
        raise BenchError(unknown_name_message("format", fmt, [*FORMATS, "robustbench"]))
    layout = layout or ("wide" if reference else "headline" if fmt in ("md", "html") else "long")
    if layout not in ("headline", "long", "wide"):
        raise BenchError(unknown_name_message("layout", layout, ["headline", "long", "wide"]))
    if layout == "long" and (fmt == "html" or reference):
        raise BenchError("--format html and --reference need --layout wide or headline (html) / wide (reference)")
    if layout == "headline" and (fmt not in ("md", "html") or reference):
        raise BenchError("--layout headline is for --format md or html, without --reference (use --layout wide)")
    wd, records = stored_records(workdir, dataset)
    # the families of comparisons this command decides share 5 %: bold marks and ⚠ findings in a marked view
    # (md, html), the findings alone in the long layout's flags
    alpha = family_share(2 if layout in ("headline", "wide") and fmt in ("md", "html") else 1)
    frame, findings = flagged_frame(records, dataset, alpha)
    for p in plots or []:
        if not p.is_file():
            raise BenchError(f"--plot {p}: no such file")
    figures = list(plots) if plots else sorted((wd / "figures").glob("*.png")) if fmt == "html" else []
    if layout == "headline":
        text = render_headline(frame, fmt, figures, alpha, findings)
    elif layout == "wide":
        ref_name, _, ref_dataset = (reference or "").partition(":")
        text = render_wide(wide_frame(frame, ref_name or None, ref_dataset or None, alpha, findings), fmt,
                           figures)
    else:
        text = render(frame, fmt, alpha)
    if output:
        atomic_write_text(output, text)
        console.err.print(f"wrote {output}")
    else:
        sys.stdout.write(text)



@app.command()
def diagnose(
    workdir: WorkdirOpt = None,
    dataset: Annotated[Optional[str], typer.Option(help="only this dataset (default: every dataset)")] = None,
) -> None:
    """Check every defense in the store for the classic signs of gradient masking."""
    from varmixup_bench.views.diagnostics import CHECKS
    from varmixup_bench.views.leaderboard import flagged_frame

    frame, findings = flagged_frame(stored_records(workdir, dataset)[1], dataset)
    if not findings:
        console.out.print(f"no warning signs in {frame.groupby(['dataset', 'defense']).ngroups} defense(s); "
                          f"checks: {', '.join(CHECKS.names())}")
        return
    table = Table(title="gradient-masking warning signs (each trained model checked on its own evaluations)")
    for col in ("dataset", "defense", "seed", "model", "check", "finding"):
        table.add_column(col, overflow="fold")
    for f in findings:  # one seed trained on four VAEs is four models: the model column tells them apart
        table.add_row(f.dataset, f.defense, f.seed, f.config_hash, f.check, f.message)
    console.out.print(table)



@app.command("plot")
def plot_command(
    kind: Annotated[str, typer.Argument(help="eps | lambda-mi | eta | linearity | converge | vae-fidelity")],
    attack: Annotated[Optional[str], typer.Option(help="the attack plotted (default pgd10; converge: every "
                                                  "budgeted attack)")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="only this dataset")] = None,
    defense: Annotated[Optional[str], typer.Option("--defense", "-d", help="converge: only this defense")] = None,
    norm: Annotated[str, typer.Option("--norm", help="the threat model plotted: linf | l2")] = "linf",
    output: OutputOpt = None,
    workdir: WorkdirOpt = None,
) -> None:
    """Write a PNG plot of recorded results (one line per defense; converge: one per EOT count)."""
    from varmixup_bench.core.norms import parse_norm
    from varmixup_bench.views.plots import PLOTS, plot

    PLOTS.get(kind)
    norm_v = parse_norm(norm).value
    wd, records = stored_records(workdir, dataset)
    suffix = "-l2" if norm_v == "L2" else ""
    path = output or wd / "figures" / f"plot-{kind}-{attack or 'pgd10'}{suffix}.png"
    plot(records, kind, path, attack, dataset, defense, norm_v)
    console.out.print(f"wrote {path}")

