"""`bench campaign status`: per pass, its cells, the ones the store lacks and the measured time it took; per step,
whether it finished with the plan's current settings. A cell counts as done exactly when the sweep would skip it
(its key, runs.sweep.SweepSpec.cell_key, is in the store), so status never disagrees with what a run would do."""
from __future__ import annotations

from dataclasses import dataclass, field
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
    cells_run: int = 0  # cells evaluated over the runs that ended (a killed run's cells are in the store)
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

    done = {r["sweep_key"] for r in ResultStore(workdir).records() if "sweep_key" in r}
    state = CampaignState(plan.state_path(workdir))
    out = []
    for p in plan.passes:
        st = PassStatus(p.name, norm=p.norm)
        st.keys = plan.cell_keys(p, workdir, device)
        st.cells = list(st.keys)
        st.missing = [c for c, key in st.keys.items() if key not in done]
        for e in state.spans(f"pass {p.name}"):
            st.seconds += float(e.get("seconds") or 0.0)
            st.runs += 1
            st.cells_run += int(e.get("cells_run") or 0)
            if e.get("status") not in ("cut short", "running"):
                st.last_end = e.get("time")
        out.append(st)
    return out


def step_status(plan: Plan, workdir: Path) -> list[StepStatus]:
    state = CampaignState(plan.state_path(workdir))
    out = []
    for step in plan.steps:
        ends = state.spans(f"step {step.name}")
        out.append(StepStatus(step.name, step.kind, state.finished(f"step {step.name}", step.key(plan)),
                              sum(float(e.get("seconds") or 0.0) for e in ends), len(ends)))
    return out
