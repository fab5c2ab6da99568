"""The campaign's state file, <workdir>/campaign-<name>.jsonl: one JSON line per event, appended and fsynced.

    {"event": "run", "time": ..., "command": "bench campaign run ...", "commit": ..., "platform": ..., "cpus": ...,
     "threads": ..., "executor": ..., "plan": ..., "plan_sha256": ...}
    {"event": "start", "step": "pass main", "kind": "pass", "time": ...}
    {"event": "end", "step": "pass main", "kind": "pass", "time": ..., "start": ..., "seconds": ..., "status": "ok",
     "cells_run": 6, "cells_skipped": 0}            (steps: "key", "outputs", "result"; a failure: "error")
    {"event": "beat", "step": "pass main", "kind": "pass", "time": ..., "start": ..., "seconds": ...,
     "stopped_seconds": ...}                        (every BEAT_SECONDS while a pass or step runs)

Only `campaign run` writes it (one at a time per campaign and workdir: a lock file), status and compose read it:
the measured wall time of each pass and step, the commands and the machines that ran them. A line torn by a
crash is skipped when read. A process killed outright (SIGKILL, a machine or session that goes away) writes no
end event; its beats say how long the pass or step had run, so a killed run costs the wall time at most one beat.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from varmixup_bench.core.clock import running_time, stopped_time
from varmixup_bench.core.errors import BenchError

BEAT_SECONDS = 60.0  # how often a running pass or step appends its seconds so far (the wall time a kill can lose)


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
    """A campaign's events (the module docstring): runs, and the start, beats and end of each pass and step."""

    def __init__(self, path: Path, beat_seconds: float = BEAT_SECONDS) -> None:
        if not beat_seconds > 0:
            raise BenchError(f"beat_seconds must be positive, got {beat_seconds!r}")
        super().__init__(path)
        self.beat_seconds = beat_seconds
        self._writing = threading.Lock()  # the heartbeat thread and the run append to the same file

    def append(self, **event: Any) -> dict[str, Any]:
        with self._writing:
            return super().append(**event)

    def live(self) -> bool:
        """Whether a `campaign run` of this campaign holds the workdir's lock now (its open step is running, not
        cut short)."""
        lock = self.path.with_suffix(".lock")
        if not lock.exists():
            return False
        with open(lock, "a") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            return False

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

        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.beat_seconds):
                try:
                    self.append(event="beat", step=step, kind=kind, start=started, **times())
                except OSError:
                    return  # a full disk: the end event (or its absence) still says what happened

        beating = threading.Thread(target=beat, name=f"campaign-beat {step}", daemon=True)
        beating.start()
        try:
            yield info
        except BaseException as exc:
            done.set()
            beating.join()
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            self.append(event="end", step=step, kind=kind, start=started, **times(), status=status,
                        error=(str(exc).splitlines() or [type(exc).__name__])[0], **fields, **info)
            raise
        done.set()
        beating.join()
        self.append(event="end", step=step, kind=kind, start=started, **times(), status="ok", **fields, **info)

    def ends(self, step: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == "end" and (step is None or e.get("step") == step)]

    def spans(self, step: str | None = None) -> list[dict[str, Any]]:
        """Every pass or step that started, as its end event; one that has none gets one made from its last beat:
        status "running" while this campaign's run holds the lock (the last run's open step), else "cut short"
        (the process was killed), with `beats` (how many) and `until` (when the next run started, if one did: the
        latest it can have stopped). A step cut short before beats existed has seconds 0 and beats 0."""
        out: list[dict[str, Any]] = []
        open_: dict[str, Any] | None = None  # the start event of the pass or step running at this point
        beats: list[dict[str, Any]] = []  # its beats so far

        def close(until: str | None, status: str) -> None:
            nonlocal open_
            if open_ is not None:
                last = beats[-1] if beats else {}
                out.append({"event": "end", "step": open_.get("step"), "kind": open_.get("kind"),
                            "start": open_.get("time"), "time": last.get("time", open_.get("time")),
                            "seconds": float(last.get("seconds") or 0.0),
                            "stopped_seconds": float(last.get("stopped_seconds") or 0.0), "status": status,
                            "beats": len(beats), "until": until})
            open_ = None
            beats.clear()

        for e in self.events():
            kind = e.get("event")
            if kind in ("run", "start"):  # an open step before a new run or a new start was killed
                close(e.get("time"), "cut short")
                if kind == "start":
                    open_ = e
            elif kind == "beat" and open_ is not None and e.get("step") == open_.get("step"):
                beats.append(e)
            elif kind == "end":
                if open_ is not None and e.get("step") == open_.get("step"):
                    open_ = None
                    beats.clear()
                out.append(e)
        close(None, "running" if self.live() else "cut short")
        return [e for e in out if step is None or e.get("step") == step]

    def wall_seconds(self) -> tuple[float, float, bool]:
        """(the measured wall time of every pass and step, in seconds; at most how many more those killed before
        heartbeats existed ran, each from its start to the next run's; whether one of those has no later run to
        bound it). A pause with SIGSTOP is in neither."""
        spans = self.spans()
        blind = [e for e in spans if e.get("status") == "cut short" and not e.get("beats")]
        bound = sum(_seconds_between(e["start"], e["until"]) for e in blind if e.get("start") and e.get("until"))
        return (sum(float(e.get("seconds") or 0.0) for e in spans), bound,
                any(not e.get("until") for e in blind))

    def finished(self, step: str, key: str) -> dict[str, Any] | None:
        """The last successful end of `step` with this key whose outputs all still exist, else None."""
        for e in reversed(self.ends(step)):
            if e.get("status") == "ok" and e.get("key") == key and all(Path(p).exists() for p in e.get("outputs", [])):
                return e
        return None


def _seconds_between(start: str, end: str) -> float:
    """Seconds from one ISO time to a later one (0 if it is not later)."""
    from datetime import datetime

    return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())
