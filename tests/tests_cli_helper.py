"""Run the `bench` CLI in-process through main(), so BenchError handling and exit codes are exercised."""
from __future__ import annotations

import sys
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO

from rich.console import Console

import varmixup_bench.cli as cli


def bench_cli(*args: str) -> tuple[int, str, str]:
    """Invoke the CLI through main() so BenchError handling is exercised; returns (status, stdout, stderr)."""
    out, err = StringIO(), StringIO()
    old, old_consoles = sys.argv, (cli.out, cli.err)
    sys.argv = ["bench", *args]
    code = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            cli.out, cli.err = Console(file=out, width=200), Console(file=err, width=200)
            cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old
        cli.out, cli.err = old_consoles
    return code, out.getvalue(), err.getvalue()
