"""The results store: one JSON record per evaluation, appended under a lock to <workdir>/results.jsonl."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bench.atomic import file_lock

RECORD_FIELDS = [
    "dataset", "model", "defense", "attack", "threat_model", "eps", "step", "clean_acc", "clean_acc_std",
    "robust_acc", "robust_acc_std", "trials", "n_examples", "seconds", "seed", "config_hash", "eval_hash",
    "preset", "device", "trained", "timestamp", "versions",
]


class ResultStore:
    """Append-only JSONL; each record is written with one write() + fsync while holding an exclusive lock."""

    def __init__(self, workdir: Path) -> None:
        self.path = Path(workdir) / "results.jsonl"
        self.lock_path = Path(workdir) / ".results.lock"

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        with file_lock(self.lock_path):
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a torn line from a crashed writer is skipped, never half-read
        return out
