"""A campaign plan's rehearsal (`bench campaign rehearse`): the whole plan, every pass, step and claim, at toy
budgets (config.presets.rehearsal_budgets) in a workdir of its own, so that a mistake that would stop a run of many hours
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
    summary and the composed page (its claims decided, or what is missing). A pass or step that fails is a
    BenchError naming it, after the page of what did run is composed."""
    from varmixup_bench.campaigns.compose import compose
    from varmixup_bench.campaigns.engine import RunSummary, run_campaign
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.config.presets import REHEARSAL, rehearsal_budgets
    from varmixup_bench.training.data import load_dataset

    checked = load_plan(path, rehearsal=REHEARSAL)  # every value checked before the workdir is touched
    check_workdir(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text(f"A rehearsal of {path} at toy budgets (config.presets.rehearsal_budgets): its "
                                  "numbers mean nothing.\n")
    # the subsets scaled to the dataset's classes (its decoded copy is the one the run then reads)
    classes = load_dataset(checked.dataset, cache_dir=workdir / "data").num_classes
    plan = load_plan(path, rehearsal=rehearsal_budgets(classes))
    failure, summary = None, RunSummary()
    try:
        summary = run_campaign(plan, workdir, device=device, show_progress=show_progress, command=command, log=log)
    except Exception as exc:  # noqa: BLE001 - any failure of the plan is the rehearsal's finding
        failure = exc
    page = compose(plan, workdir, workdir / f"{plan.name}.md", command, device)
    if failure is not None:
        raise BenchError(f"the rehearsal stopped: {type(failure).__name__}: {failure} (its state file, "
                         f"{plan.state_path(workdir).name}, names the pass or step; the page of what ran: "
                         f"{page.page})") from failure
    return summary, page
