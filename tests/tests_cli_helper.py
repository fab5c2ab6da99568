"""Run the `bench` CLI in-process through main(), so BenchError handling and exit codes are exercised."""
from __future__ import annotations

import sys
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO

from rich.console import Console

import varmixup_bench.cli as cli
from varmixup_bench.cli import console


def bench_cli(*args: str) -> tuple[int, str, str]:
    """Invoke the CLI through main() so BenchError handling is exercised; returns (status, stdout, stderr)."""
    out, err = StringIO(), StringIO()
    old, old_consoles = sys.argv, (console.out, console.err)
    sys.argv = ["bench", *args]
    code = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            # every command prints through varmixup_bench.cli.console (cli.out and cli.err read it)
            console.out, console.err = Console(file=out, width=200), Console(file=err, width=200)
            cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old
        console.out, console.err = old_consoles
    return code, out.getvalue(), err.getvalue()
