"""`bench campaign status`: per pass, its cells, the ones the store lacks and the measured time it took; per step,
whether it finished with the plan's current settings. A cell counts as done exactly when the sweep would skip it
(its key, runs.sweep.SweepSpec.cell_key, is in the store), so status never disagrees with what a run would do."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from varmixup_bench.campaigns.plan import Plan
from varmixup_bench.campaigns.state import CampaignState


@dataclass
class PassStatus:
    name: str
    cells: list = field(default_factory=list)  # runs.sweep.Cell, every cell of the pass
    keys: dict = field(default_factory=dict)  # Cell -> its sweep key
    missing: list = field(default_factory=list)  # the cells not in the store
    seconds: float = 0.0  # measured: the pass's spans in the state file (a killed run's until its last beat)
    runs: int = 0  # how many times the pass ran (its spans, a killed or running one included)
    cells_run: int = 0  # the pass's cells whose record was written while it ran (any run, a killed one's included)
    last_end: str | None = None
    norm: str = "Linf"


@dataclass
class StepStatus:
    name: str
    kind: str
    done: dict[str, Any] | None  # the end event of the finished step with the current settings, else None
    seconds: float = 0.0  # every run of the step (its spans in the state file)
    runs: int = 0


def cell_text(cell, norm: str) -> str:
    """`erm pgd10 @ 32/255 (seed 0)`: how the page and status name a cell."""
    from varmixup_bench.attacks.spec import attack_class
    from varmixup_bench.views.leaderboard import eps_text

    where = f" @ {eps_text(cell.eps, norm)}" if attack_class(cell.attack).uses_eps else ""
    return f"{cell.defense} {cell.attack}{where} (seed {cell.seed})"


def pass_status(plan: Plan, workdir: Path, device: str = "auto") -> list[PassStatus]:
    """Each pass's cells with their keys and which are missing (computing a key loads the dataset, never trains)."""
    from varmixup_bench.results.store import ResultStore

    records = ResultStore(workdir).records()
    done = {r["sweep_key"] for r in records if "sweep_key" in r}
    written: dict[str, str] = {}  # sweep key -> when its (latest) record was written
    for r in records:
        if "sweep_key" in r and r.get("timestamp"):
            written[r["sweep_key"]] = max(written.get(r["sweep_key"], ""), str(r["timestamp"]))
    state = CampaignState(plan.state_path(workdir))
    out = []
    for p in plan.passes:
        st = PassStatus(p.name, norm=p.norm)
        st.keys = plan.cell_keys(p, workdir, device)
        st.cells = list(st.keys)
        st.missing = [c for c, key in st.keys.items() if key not in done]
        spans = state.spans(f"pass {p.name}")
        for e in spans:
            st.seconds += float(e.get("seconds") or 0.0)
            st.runs += 1
            if e.get("status") not in ("cut short", "running"):
                st.last_end = e.get("time")
        st.cells_run = cells_written_during(st.keys.values(), written, spans)
        out.append(st)
    return out


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def cells_written_during(keys, written: dict[str, str], spans: list[dict[str, Any]]) -> int:
    """How many of `keys` have a record written while one of `spans` ran: from its start to its end, or for one
    killed to the next run's start (`until`; the end counted only beats and misses the last minute), or for one
    still running to now. The run's own `cells_run` counted only runs that ended, so a pass evaluated across
    several killed sessions had read 0."""
    windows = []
    for e in spans:
        start = _instant(e.get("start"))
        end = (_instant(e.get("until")) or _instant(e.get("time")) if e.get("status") == "cut short"
               else None if e.get("status") == "running" else _instant(e.get("time")))
        if start is not None:
            windows.append((start, end))
    count = 0
    for key in keys:
        t = _instant(written.get(key))
        if t is not None and any(s <= t and (e is None or t <= e) for s, e in windows):
            count += 1
    return count


def step_status(plan: Plan, workdir: Path) -> list[StepStatus]:
    state = CampaignState(plan.state_path(workdir))
    out = []
    for step in plan.steps:
        ends = state.spans(f"step {step.name}")
        out.append(StepStatus(step.name, step.kind, state.finished(f"step {step.name}", step.key(plan)),
                              sum(float(e.get("seconds") or 0.0) for e in ends), len(ends)))
    return out


def finish_text(left_seconds: float, unknown: int = 0, now: datetime | None = None) -> str:
    """When the campaign would end if it ran from `now` without a stop: the forecast's seconds left added to the
    clock (a pause or a session's end moves it; estimates that are unknown are not in it)."""
    done = (now or datetime.now(timezone.utc)) + timedelta(seconds=left_seconds)
    return (f"if it runs from now on without a stop (no pause, no session's end): done about {done:%Y-%m-%d %H:%M} "
            f"UTC" + (f", not counting the {unknown} unknown estimate(s)" if unknown else ""))
