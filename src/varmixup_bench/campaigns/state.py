"""The campaign's state file, <workdir>/campaign-<name>.jsonl: one JSON line per event, appended and fsynced.

    {"event": "run", "time": ..., "command": "bench campaign run ...", "commit": ..., "platform": ..., "cpus": ...,
     "threads": ..., "executor": ..., "plan": ..., "plan_sha256": ...}
    {"event": "start", "step": "pass main", "kind": "pass", "time": ...}
    {"event": "end", "step": "pass main", "kind": "pass", "time": ..., "start": ..., "seconds": ..., "status": "ok",
     "cells_run": 6, "cells_skipped": 0}            (steps: "key", "outputs", "result"; a failure: "error")

Only `campaign run` writes it (one at a time per campaign and workdir: a lock file), status and compose read it:
the measured wall time of each pass and step, the commands and the machines that ran them. A line torn by a
crash is skipped when read.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from varmixup_bench.core.clock import running_time, stopped_time
from varmixup_bench.core.errors import BenchError


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_commit() -> str | None:
    """The commit of the code that runs (its checkout's HEAD, marked when it has uncommitted changes), or None
    outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def machine() -> dict[str, Any]:
    """Where the campaign runs: the platform, its CPUs and torch's intra-op threads."""
    import platform

    import torch

    return {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": torch.get_num_threads()}


class JsonLines:
    """An append-only file of JSON objects, one per line, each fsynced; a line torn by a crash is skipped."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def events(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash mid-write
            if isinstance(event, dict):
                out.append(event)
        return out

    def append(self, **event: Any) -> dict[str, Any]:
        event = {"time": now(), **event}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(json.dumps(event, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return event


class CampaignState(JsonLines):
    """A campaign's events (the module docstring): runs, and the start and end of each pass and step."""

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held by `campaign run`: a second run of the same campaign in the same workdir stops with a message."""
        lock = self.path.with_suffix(".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BenchError(f"another `bench campaign run` of this campaign is running on {self.path.parent} "
                                 f"(lock {lock.name})") from None
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    @contextmanager
    def timed(self, step: str, kind: str, **fields: Any) -> Iterator[dict[str, Any]]:
        """A start event, then an end event with the measured seconds and whatever the block put into the dict it
        gets; a failure is recorded (status failed, its message) and raised again."""
        started = self.append(event="start", step=step, kind=kind, **fields)["time"]
        t0, s0 = running_time(), stopped_time()  # seconds the process could run; a SIGSTOP pause is `stopped`
        info: dict[str, Any] = {}

        def times() -> dict[str, float]:
            return {"seconds": round(running_time() - t0, 3), "stopped_seconds": round(stopped_time() - s0, 3)}

        try:
            yield info
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            self.append(event="end", step=step, kind=kind, start=started, **times(), status=status,
                        error=(str(exc).splitlines() or [type(exc).__name__])[0], **fields, **info)
            raise
        self.append(event="end", step=step, kind=kind, start=started, **times(), status="ok", **fields, **info)

    def ends(self, step: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == "end" and (step is None or e.get("step") == step)]

    def finished(self, step: str, key: str) -> dict[str, Any] | None:
        """The last successful end of `step` with this key whose outputs all still exist, else None."""
        for e in reversed(self.ends(step)):
            if e.get("status") == "ok" and e.get("key") == key and all(Path(p).exists() for p in e.get("outputs", [])):
                return e
        return None
