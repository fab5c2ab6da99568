"""A campaign plan's rehearsal (`bench campaign rehearse`): the whole plan, every pass, step and claim, at toy
budgets (config.presets.REHEARSAL) in a workdir of its own, so that a mistake that would stop a run of many hours
after its first passes (a step that fails, a claim whose cells never pool, a plot without its records) shows in
minutes. Its numbers mean nothing, and its page says so."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from varmixup_bench.core.errors import BenchError

MARKER = "REHEARSAL"  # the file that marks a workdir as a rehearsal's


def check_workdir(workdir: Path) -> None:
    """A rehearsal writes only into a new or empty workdir or an earlier rehearsal's: its toy records must never
    sit beside a real campaign's."""
    if workdir.is_dir() and any(workdir.iterdir()) and not (workdir / MARKER).is_file():
        raise BenchError(f"{workdir} holds other files: a rehearsal runs in a new or empty workdir (or an earlier "
                         f"rehearsal's), never beside real results")
    if workdir.exists() and not workdir.is_dir():
        raise BenchError(f"{workdir} is a file, not a workdir")


def rehearse(path: Path, workdir: Path, *, device: str = "auto", show_progress: bool = True,
             command: str | None = None, log: Callable[[str], None] = lambda message: None):
    """Run the plan at toy budgets in `workdir` and compose its page there (NAME-rehearsal.md); returns the run's
    summary and the composed page (its claims decided, or what is missing)."""
    from varmixup_bench.campaigns.compose import compose
    from varmixup_bench.campaigns.engine import run_campaign
    from varmixup_bench.campaigns.plan import load_plan

    plan = load_plan(path, rehearsal=True)  # every value checked before the workdir is touched
    check_workdir(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text(f"A rehearsal of {path} at toy budgets (config.presets.REHEARSAL): its numbers mean "
                                  "nothing.\n")
    summary = run_campaign(plan, workdir, device=device, show_progress=show_progress, command=command, log=log)
    page = compose(plan, workdir, workdir / f"{plan.name}.md", command, device)
    return summary, page
