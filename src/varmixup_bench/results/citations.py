"""Numbers quoted in Markdown prose, checked against the result files they come from.

A quoted figure carries a citation right after it, e.g.
`85.4 %<!-- cite: leaderboards/cifar10-paper-regime.csv defense=erm attack=clean seed=0 field=clean_acc -->`:
the CSV path (relative to the Markdown file), filters that select exactly one record, and the field. The
figure must equal the record's value rounded to the figure's own decimals, so prose cannot drift from tables. A
filter's key is a record field, or a dotted path into one of its JSON fields, so that one model's records under
two inference settings are told apart by name (`inference_config.lambda_mi=0.2`,
`train_config.recipe_config.eta=2`); numbers compare as numbers (`eps=8/255`), JSON's true, false and null as
written (`inference_config.vae.adversarial=true`).

A claim of a campaign page is cited by its number, e.g. `claim 9<!-- claim: cifar10-regime.md holds "VarERM
within 6" -->`: the page (relative to the Markdown file), the verdict the prose gives, and words found in that
claim's note and in no other claim's of the page; the page's claim of that number must have that verdict, so
prose cannot cite a claim that was renumbered or whose verdict changed."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.parsing import parse_number

CITE = re.compile(r"(-?\d+(?:\.\d+)?)\s*%?\s*<!--\s*cite:\s*(?P<body>[^>]*?)\s*-->")
CLAIM_CITE = re.compile(r"(\d+)\s*<!--\s*claim:\s*(?P<body>[^>]*?)\s*-->")
CLAIM_ROW = re.compile(r"^\| (\d+) \|.*\| \*\*(?P<verdict>[^*]+)\*\*(?: \((?P<note>.*)\))? \|$")
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


def _dig(value, path: list[str]):
    """The value at `path` inside a JSON field's text (None where the record has no such key)."""
    try:
        obj = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        return None
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _same(value, want: str, key: str) -> bool:
    """A JSON value against a filter's text: a number as a number (`0.2`, `1/5`), true/false/null as JSON writes
    them, anything else as its text."""
    if value is None or isinstance(value, bool):
        return want == json.dumps(value)
    if isinstance(value, (int, float)):
        try:
            return abs(float(value) - parse_number(want, key)) < 1e-9
        except (ValueError, BenchError):  # a filter that is no number matches no number
            return False
    return want == str(value)


def _select(frame: pd.DataFrame, filters: dict[str, str]) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for key, want in filters.items():
        head, *path = key.split(".")
        if key in frame.columns:
            path = []
        elif not path or head not in frame.columns:
            raise KeyError(f"no column {key!r}")
        if path:
            mask &= frame[head].map(lambda v: _same(_dig(v, path), want, key)).astype(bool)
        elif key in _NUMERIC_FILTERS:
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


def _page_claims(page: Path) -> dict[int, tuple[str, str]]:
    """{number: (verdict, note)} of a campaign page's claims table."""
    text = page.read_text()
    section = text.split("## Claims\n", 1)[1].split("\n## ", 1)[0] if "## Claims\n" in text else ""
    out = {}
    for line in section.splitlines():
        m = CLAIM_ROW.match(line)
        if m:
            out[int(m.group(1))] = (m.group("verdict"), m.group("note") or "")
    return out


def check_claim_citations(path: str | Path) -> list[str]:
    """Problems with the claim citations of one Markdown file (empty: each cited claim has the number, verdict and
    note the prose gives it)."""
    import shlex

    path = Path(path)
    text, problems, pages = path.read_text(), [], {}
    for m in CLAIM_CITE.finditer(text):
        where = f"{path.name}:{text[:m.start()].count(chr(10)) + 1}"
        try:
            parts = shlex.split(m.group("body"))
        except ValueError as exc:
            problems.append(f"{where}: unreadable claim citation ({exc})")
            continue
        if len(parts) != 3:
            problems.append(f'{where}: a claim citation is PAGE VERDICT "words of its note", got {parts}')
            continue
        source, verdict, words = parts
        page = (path.parent / source).resolve()
        if not page.exists():
            problems.append(f"{where}: cited page {source} does not exist")
            continue
        claims = pages.setdefault(page, _page_claims(page))
        number = int(m.group(1))
        if number not in claims:
            problems.append(f"{where}: {source} has no claim {number}")
            continue
        said, note = claims[number]
        others = sorted(n for n, (_, other) in claims.items() if n != number and words and words in other)
        if not words or words not in note:
            problems.append(f"{where}: claim {number} of {source} is \"{note}\", not about \"{words}\"")
        elif others:
            problems.append(f"{where}: \"{words}\" is in the notes of claims {', '.join(map(str, [number, *others]))} "
                            f"of {source}: quote words of claim {number}'s alone")
        elif said != verdict:
            problems.append(f"{where}: the text says claim {number} {verdict} but {source} says {said}")
    return problems
