"""The results store: one JSON record per evaluation, appended under a lock to <workdir>/results.jsonl."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from bench.atomic import atomic_write_text, file_lock

RECORD_FIELDS = [
    "dataset", "model", "defense", "attack", "threat_model", "eps", "step", "clean_acc", "clean_acc_std",
    "robust_acc", "robust_acc_std", "trials", "n_examples", "seconds", "seed", "config_hash", "eval_hash",
    "preset", "device", "trained", "timestamp", "versions",
]


class ResultStore:
    """Append-only JSONL; each record is written with one write() + fsync while holding an exclusive lock."""

    def __init__(self, workdir: Path) -> None:
        self.path = Path(workdir) / "results.jsonl"
        self.retired_path = Path(workdir) / "retired.jsonl"  # records found wrong after they were stored
        self.lock_path = Path(workdir) / ".results.lock"

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        with file_lock(self.lock_path):
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())

    def records(self) -> list[dict[str, Any]]:
        return _read_jsonl(self.path)

    def retired(self) -> list[dict[str, Any]]:
        """The records `retire` moved out, each with its `retired_reason`."""
        return _read_jsonl(self.retired_path)

    def retire(self, match: Callable[[dict[str, Any]], bool], reason: str) -> list[dict[str, Any]]:
        """Move the records `match` selects from results.jsonl to retired.jsonl, each with `retired_reason`: an
        evaluation found wrong after it was stored (an attack fixed since) leaves every table and is never reused,
        and the file keeps it for the record. Under the store's lock, results.jsonl rewritten atomically (a torn
        line is dropped with it). Returns the retired records."""
        if not reason.strip():
            raise ValueError("retiring records needs a reason")
        with file_lock(self.lock_path):
            gone, kept = [], []
            for r in self.records():
                (gone if match(r) else kept).append(r)
            if not gone:
                return []
            with open(self.retired_path, "a", encoding="utf-8") as fh:
                for r in gone:
                    fh.write(json.dumps({**r, "retired_reason": reason}, sort_keys=True, default=str) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            atomic_write_text(self.path, "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in kept))
        return gone


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """One dict per line; a torn line from a crashed writer is skipped, never half-read."""
    if not path.exists():
        return []
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out
