"""Numbers quoted in Markdown prose, checked against the result files they come from.

A quoted figure carries a citation right after it, e.g.
`27.1 %<!-- cite: leaderboards/cifar10-cpu-full.csv defense=at attack=pgd10 eps=8/255 seed=0 field=robust_acc -->`:
the CSV path (relative to the Markdown file), filters that select exactly one record, and the field. The
figure must equal the record's value rounded to the figure's own decimals, so prose cannot drift from tables."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from varmixup_bench.core.parsing import parse_number

CITE = re.compile(r"(-?\d+(?:\.\d+)?)\s*%?\s*<!--\s*cite:\s*(?P<body>[^>]*?)\s*-->")
_NUMERIC_FILTERS = ("eps", "step", "n_examples", "trials", "seed")


@dataclass(frozen=True)
class Citation:
    """One quoted figure and where it claims to come from."""

    line: int
    text: str  # the figure as written
    source: str
    filters: dict[str, str]
    field: str


def find_citations(markdown: str) -> list[Citation]:
    out = []
    for m in CITE.finditer(markdown):
        parts = m.group("body").split()
        if not parts:
            raise ValueError(f"empty citation at line {markdown[:m.start()].count(chr(10)) + 1}")
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        field = kv.pop("field", "robust_acc")
        out.append(Citation(markdown[:m.start()].count("\n") + 1, m.group(1), parts[0], kv, field))
    return out


def _select(frame: pd.DataFrame, filters: dict[str, str]) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for key, want in filters.items():
        if key not in frame.columns:
            raise KeyError(f"no column {key!r}")
        if key in _NUMERIC_FILTERS:
            mask &= (frame[key].astype(float) - parse_number(want, key)).abs() < 1e-9
        else:
            mask &= frame[key].astype(str) == want
    return frame[mask]


def check_citations(path: str | Path) -> list[str]:
    """Problems with the citations of one Markdown file (empty: every quoted figure matches its source)."""
    path = Path(path)
    problems, frames = [], {}
    for c in find_citations(path.read_text()):
        where = f"{path.name}:{c.line}"
        src = (path.parent / c.source).resolve()
        if not src.exists():
            problems.append(f"{where}: cited file {c.source} does not exist")
            continue
        frame = frames.setdefault(src, pd.read_csv(src))
        try:
            rows = _select(frame, c.filters)
        except KeyError as exc:
            problems.append(f"{where}: {exc.args[0]} in {c.source}")
            continue
        if len(rows) != 1:
            problems.append(f"{where}: {len(rows)} records of {c.source} match {c.filters} (need exactly one)")
            continue
        value = float(rows.iloc[0][c.field])
        decimals = len(c.text.split(".")[1]) if "." in c.text else 0
        if f"{value:.{decimals}f}" != c.text:
            problems.append(f"{where}: the text says {c.text} but {c.source} has {c.field} = {value:.{decimals + 2}f}")
    return problems
