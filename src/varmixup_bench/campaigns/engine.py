"""`bench campaign run`: the plan's passes in priority order, each a sweep (runs.sweep: cells already in the store
are skipped, training resumes from its last epoch checkpoint), then its extra steps (a step finished with the same
settings is skipped); each pass's and step's start, end and seconds go to the campaign's state file."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from varmixup_bench.campaigns.plan import Plan
from varmixup_bench.campaigns.state import CampaignState, git_commit, machine


@dataclass
class RunSummary:
    cells_run: int = 0
    cells_skipped: int = 0
    steps_run: list[str] = field(default_factory=list)
    steps_skipped: list[str] = field(default_factory=list)


def run_campaign(plan: Plan, workdir: Path, *, executor: str = "local", options: Any = None, device: str = "auto",
                 show_progress: bool = True, command: str | None = None,
                 log: Callable[[str], None] = lambda message: None) -> RunSummary:
    """Run what the workdir lacks of the plan; returns what ran and what was skipped. A failing pass or step is
    recorded in the state file and stops the run (a rerun resumes from the cells and steps already done)."""
    from varmixup_bench.campaigns.steps import STEPS, StepRun
    from varmixup_bench.runs.sweep import EXECUTORS, run_sweep

    EXECUTORS.get(executor)
    workdir = Path(workdir)
    state = CampaignState(plan.state_path(workdir))
    summary = RunSummary()
    with state.exclusive():
        state.append(event="run", command=command, commit=git_commit(), executor=executor, plan=str(plan.path),
                     plan_sha256=plan.sha256, **machine())
        for p in plan.passes:
            spec = plan.sweep_spec(p, workdir, device=device, show_progress=show_progress)
            with state.timed(f"pass {p.name}", "pass") as info:
                records, skipped, seconds = run_sweep(spec, executor, options)
                info.update(cells_run=len(records), cells_skipped=skipped)
            summary.cells_run += len(records)
            summary.cells_skipped += skipped
            log(f"pass {p.name}: {len(records)} cell(s) run, {skipped} already in the store, {seconds:.1f} s")
        for step in plan.steps:
            key = step.key(plan)
            if state.finished(f"step {step.name}", key) is not None:
                summary.steps_skipped.append(step.name)
                log(f"step {step.name}: done before with these settings, skipped")
                continue
            with state.timed(f"step {step.name}", step.kind, key=key) as info:
                info.update(STEPS.get(step.kind).run(StepRun(plan, step, workdir, device, show_progress)))
            summary.steps_run.append(step.name)
            log(f"step {step.name}: wrote {', '.join(info.get('outputs', []))}")
    return summary
