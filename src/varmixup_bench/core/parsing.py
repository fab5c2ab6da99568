"""Parsing of numeric options: epsilons and step sizes as `8/255`, `0.0314` or comma lists of them."""
from __future__ import annotations

from fractions import Fraction

from varmixup_bench.core.errors import BenchError


def parse_number(text: str, what: str = "value") -> float:
    """Parse `8/255` or `0.0314` into a float; reject empty, non-finite or malformed input."""
    raw = text.strip()
    try:
        if "/" in raw:
            num, den = raw.split("/")
            value = float(Fraction(float(num.strip())) / Fraction(float(den.strip())))
        else:
            value = float(raw)
    except (ValueError, ZeroDivisionError, OverflowError):
        raise BenchError(f"invalid {what} {text!r}: expected a number like 8/255 or 0.0314") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise BenchError(f"invalid {what} {text!r}: must be finite")
    return value


def parse_eps(text: str, norm: str | None = None) -> float:
    """A radius on the [0,1] pixel scale: 0 <= eps <= 1 in L-inf; any eps >= 0 in L2 (e.g. 0.5)."""
    from varmixup_bench.core.norms import Norm, parse_norm

    value = parse_number(text, "epsilon")
    if value < 0:
        raise BenchError(f"invalid epsilon {text!r}: must be >= 0")
    if value > 1 and parse_norm(norm) is not Norm.L2:
        raise BenchError(
            f"invalid epsilon {text!r}: inputs are on the [0,1] scale, so an L-inf eps must be <= 1 "
            + (f"(did you mean {text}/255, or --norm l2?)" if "/" not in str(text) else "(or did you mean --norm l2?)")
        )
    return value


def parse_eps_list(text: str, norm: str | None = None) -> list[float]:
    """Comma-separated epsilons, each parsed by parse_eps in `norm`; duplicates removed, order kept."""
    parts = [p for p in text.split(",")]
    if not parts or any(not p.strip() for p in parts):
        raise BenchError(f"invalid epsilon list {text!r}: expected values like 2/255,4/255,8/255")
    out: list[float] = []
    for p in parts:
        v = parse_eps(p, norm)
        if v not in out:
            out.append(v)
    return out


def parse_step(text: str) -> float:
    """A PGD step size on the [0,1] scale: 0 < step <= 1."""
    value = parse_number(text, "step size")
    if not 0 < value <= 1:
        raise BenchError(f"invalid step size {text!r}: must satisfy 0 < step <= 1 on the [0,1] scale")
    return value


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split at `sep` outside brackets: `pgd10,adaptive-pgd(steps=20,eot=8)` is two items."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch in "([{") - (ch in ")]}")
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def parse_name_list(text: str, what: str) -> list[str]:
    """Comma-separated names (attacks, defenses); commas inside brackets belong to an attack's arguments;
    empty entries are an error."""
    parts = [p.strip() for p in split_top_level(text)]
    if not parts or any(not p for p in parts):
        raise BenchError(f"invalid {what} list {text!r}: expected comma-separated names")
    return parts


def parse_keywords(parts, prefix: str, noun: str, value) -> dict:
    """`key=value` items of an attack or defense spec -> {key: value(key, text)}: a malformed item or a repeated
    key is one BenchError starting with `prefix` (e.g. "invalid attack 'pgd(x)'") and naming the items `noun`."""
    import re

    args: dict = {}
    for part in (p for p in parts if p.strip()):
        key, eq, text = part.partition("=")
        key = key.strip()
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise BenchError(f"{prefix}: {noun} are key=value, got {part.strip()!r}")
        if key in args:
            raise BenchError(f"{prefix}: {key} given twice")
        args[key] = value(key, text)
    return args
