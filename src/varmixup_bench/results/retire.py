"""Retiring stored records that were found wrong after they were stored (an attack fixed since): they leave
results.jsonl for retired.jsonl with the reason, so no table, report or reuse sees them and the next sweep runs
those cells again with the fixed code."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from varmixup_bench.core.errors import BenchError


def _utc(text: str, what: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise BenchError(f"{what} {text!r} is not an ISO time such as 2026-11-23T10:40") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def retire_records(workdir: Path, attack: str | None, before: str, reason: str, defense: str | None = None,
                   dry_run: bool = False, seed: int | None = None) -> list[dict[str, Any]]:
    """The records of `attack` (every attack if None; then a `seed` is required) and of `defense` and training
    `seed` where given, stored before `before` (UTC unless it says otherwise), marked retired in the store with
    `reason`; with dry_run only listed. Matching nothing is an error that lists the store's attacks or seeds, so
    a misspelt name never passes silently. A whole seed is retired when its weights were lost and retrained ones
    no longer reproduce its cells."""
    from varmixup_bench.results.store import ResultStore

    store = ResultStore(workdir)
    if not store.path.exists() and not store.legacy_path.exists():
        raise BenchError(f"no results in {workdir} ({store.path.name} does not exist)")
    if not reason.strip():
        raise BenchError("--reason must say why the records are retired")
    cutoff = _utc(before, "--before")

    if attack is None and seed is None:
        raise BenchError("name the records to retire: an --attack, a --seed, or both")

    def match(r: dict[str, Any]) -> bool:
        return ((attack is None or r.get("attack") == attack) and (defense is None or r.get("defense") == defense)
                and (seed is None or r.get("seed") == seed)
                and _utc(str(r.get("timestamp")), "record timestamp") < cutoff)

    records = store.records()
    if attack is not None and not any(r.get("attack") == attack for r in records):
        raise BenchError(f"no records of attack {attack!r} in {workdir}; its attacks: "
                         f"{', '.join(sorted({str(r.get('attack')) for r in records}))}")
    if seed is not None and not any(r.get("seed") == seed for r in records):
        raise BenchError(f"no records of seed {seed} in {workdir}; its seeds: "
                         f"{', '.join(str(s) for s in sorted({r.get('seed') for r in records}, key=str))}")
    if dry_run:
        return [r for r in records if match(r)]
    return store.retire(match, reason)
