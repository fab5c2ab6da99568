"""User-facing errors: anything raised as BenchError is printed as one line and exits with status 2."""
from __future__ import annotations


class BenchError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""

    exit_code = 2
