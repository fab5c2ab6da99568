"""The `bench` command line (typer + rich). Bad input exits with status 2 and one line, never a traceback.

One module per command group; each parses its options, calls the module that does the work, and prints:
run (run), listing (list), views (leaderboard, diagnose, plot), sweep (sweep, campaign), report (converge,
report), vae (vae, samples, fid), records (retire, restore, export, import), perf (perf)."""
from __future__ import annotations

import sys
from typing import Any

from varmixup_bench.cli import console
from varmixup_bench.cli.common import app
from varmixup_bench.core.errors import BenchError

# importing a command module registers its commands on `app` (in this order in `bench --help`)
from varmixup_bench.cli import run, listing, views, sweep, report, vae, records, perf  # noqa: E402,F401


def __getattr__(name: str) -> Any:
    """`cli.out` and `cli.err`: the consoles in effect (varmixup_bench.cli.console, where a caller swaps them)."""
    if name in ("out", "err"):
        return getattr(console, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    try:
        app()
    except BenchError as exc:
        console.err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.err.print("interrupted")
        sys.exit(130)
