"""User-facing errors: anything raised as BenchError is printed as one line and exits with status 2."""
from __future__ import annotations


class BenchError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""

    exit_code = 2


class AttackRefused(BenchError):
    """An attack that cannot run against this defense (a surrogate attack on a randomised rule without a
    surrogate): `bench run` reports it in one line, skips it and runs the other attacks."""
