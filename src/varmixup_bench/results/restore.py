"""Rebuild a results store from a long-layout leaderboard CSV (`bench leaderboard --format csv --layout long`).

The committed CSV of a leaderboard holds every field of every record it shows, per-image outcomes included, so
a workdir lost with its machine can be restored from it: the composer, `bench diagnose` and the paired tests work
again, and a resumed sweep skips the restored cells (their `sweep_key`). The CSV holds no weights: a resumed sweep
retrains the models it needs, and checks that each retrained model reproduces its restored clean cell image by
image before attacking it (`varmixup_bench.runs.sweep.check_reproduced`).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from varmixup_bench.core.errors import BenchError
from varmixup_bench.results.record import ESSENTIAL_FIELDS
from varmixup_bench.results.store import ResultStore

# the leaderboard's own columns, not record fields
DERIVED = ("flags",)
INTS = ("trials", "n_examples", "seed", "threads", "draws", "schema_version")
BOOLS = ("stochastic", "trained")
STRINGS = ("dataset", "defense", "attack", "threat_model", "norm", "metric", "model", "preset", "device",
           "config_hash", "eval_hash", "data_fingerprint", "timestamp", "sweep_key")
REQUIRED = ESSENTIAL_FIELDS


def _value(col: str, text: str) -> Any:
    """One CSV cell back to its record value (the inverse of leaderboard.render's `_json` and versions join)."""
    if col in STRINGS:
        return text
    if col in BOOLS:
        if text not in ("True", "False"):
            raise ValueError(f"{col} must be True or False, got {text!r}")
        return text == "True"
    if col in INTS:
        return int(float(text))
    if col == "versions":
        return dict(part.split("=", 1) for part in text.split(";") if part)
    if text[:1] in "{[":
        return json.loads(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return None if math.isnan(number) else number


def records_from_csv(path: str | Path) -> list[dict[str, Any]]:
    """The records a long-layout leaderboard CSV holds, one per row; an empty cell is a field the record lacked
    (`step` stays, as None: the store writes it for attacks without a step)."""
    path = Path(path)
    if not path.exists():
        raise BenchError(f"no such leaderboard CSV: {path}")
    if not path.is_file():
        raise BenchError(f"{path} is not a file: give the leaderboard CSV itself")
    what = f"{path} is not a long-layout leaderboard CSV (`bench leaderboard --format csv --layout long`)"
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BenchError(f"{what}, or a damaged one: {str(exc).splitlines()[0]}") from None
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise BenchError(f"{what}: it lacks the column(s) {', '.join(missing)}")
    out = []
    for i, row in enumerate(frame.to_dict("records"), start=2):
        empty = [c for c in REQUIRED if row[c] == ""]
        if empty:  # a row cut short (a truncated file): no record to restore, and nothing is written
            raise BenchError(f"{path} line {i}: no {', '.join(empty)} (a truncated or damaged CSV?); nothing "
                             "restored")
        rec: dict[str, Any] = {}
        for col, text in row.items():
            if col in DERIVED:
                continue
            if text == "":
                if col == "step":
                    rec[col] = None
                continue
            try:
                rec[col] = _value(col, text)
            except (ValueError, json.JSONDecodeError) as exc:
                raise BenchError(f"{path} line {i}, column {col}: cannot read {text[:40]!r} ({exc})") from exc
        rec["restored_from"] = path.name
        out.append(rec)
    return out


def _identity(rec: dict[str, Any]) -> tuple:
    return rec.get("sweep_key") or rec.get("eval_hash"), rec.get("timestamp")


def restore(csv_path: str | Path, workdir: str | Path) -> tuple[int, int]:
    """Append the CSV's records that the store lacks (same key and timestamp), in one transaction; returns (added,
    already there). Running it twice adds nothing the second time. The CSV is read whole first: a damaged one
    writes nothing, and leaves a workdir that did not exist uncreated."""
    records = records_from_csv(csv_path)
    store = ResultStore(Path(workdir))
    have = {_identity(r) for r in store.records()}
    new = []
    for rec in records:
        if _identity(rec) not in have:
            new.append(rec)
            have.add(_identity(rec))
    store.extend(new)
    return len(new), len(records) - len(new)
