"""`bench perf`: the developer benchmarks of the harness against plain PyTorch (varmixup_bench.dev.perf)."""
from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.table import Table

from varmixup_bench.cli import console
from varmixup_bench.cli.common import app, check_positive
from varmixup_bench.core.errors import BenchError


@app.command()
def perf(
    fmt: str = typer.Option("table", "--format", "-f", help="table | json"),
    only: Optional[str] = typer.Option(None, help="comma-separated benchmark names"),
    repeats: int = typer.Option(5, help="timed repeats per side (median taken)"),
) -> None:
    """Time the harness against plain PyTorch baselines; each measurement is a ratio."""
    from varmixup_bench.core.parsing import parse_name_list
    from varmixup_bench.dev.perf import BENCHMARKS, run_benchmarks

    if fmt not in ("table", "json"):
        raise BenchError(f"unknown format {fmt!r}; valid formats: table, json")
    check_positive(repeats=repeats)  # before the warm-up: no median of 0 repeats
    names = parse_name_list(only, "benchmark") if only else None
    for n in names or []:
        BENCHMARKS.get(n)
    results = run_benchmarks(names, repeats)
    if fmt == "json":
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
        return
    table = Table(title="bench perf (ratio = harness / plain baseline)")
    for col in ("benchmark", "harness s", "baseline s", "ratio", "target"):
        table.add_column(col)
    for n, r in results.items():
        table.add_row(n, f"{r['harness_s']:.4f}", f"{r['baseline_s']:.4f}", f"{r['ratio']:.3f}", r.get("target", ""))
    console.out.print(table)

