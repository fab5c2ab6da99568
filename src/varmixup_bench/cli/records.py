"""`bench retire|restore|export|import`: the store's records, moved out, rebuilt, written and read back."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from varmixup_bench.cli import console
from varmixup_bench.cli.common import WorkdirOpt, app
from varmixup_bench.core.errors import BenchError


@app.command()
def retire(
    reason: Annotated[str, typer.Option(help="why (kept with each retired record in the store)")],
    before: Annotated[str, typer.Option(help="only records stored before this UTC time, e.g. 2026-11-23T10:40")],
    attack: Annotated[Optional[str], typer.Option(
        "--attack", "-a", help="the attack whose records to retire (exact name); every attack if omitted, which "
                               "needs --seed")] = None,
    defense: Annotated[Optional[str], typer.Option("--defense", "-d", help="only this defense")] = None,
    seed: Annotated[Optional[int], typer.Option(help="only this training seed (e.g. one whose weights were lost)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be retired, change nothing")] = False,
    workdir: WorkdirOpt = None,
) -> None:
    """Move records found wrong after they were stored (an attack fixed since, or a model whose weights were lost)
    out of the current results (the store keeps them, with the reason: `bench export --retired`): tables, reports
    and reuse stop seeing them, and the next sweep runs those cells again."""
    from varmixup_bench.results.retire import retire_records
    from varmixup_bench.core.workdir import existing_workdir

    gone = retire_records(existing_workdir(workdir), attack, before, reason, defense, dry_run, seed)
    verb = "would retire" if dry_run else "retired"
    console.out.print(f"{verb} {len(gone)} record(s)" + "".join(
                      f"\n  {r['defense']} {r['attack']} seed {r.get('seed')} eps {r.get('eps')} ({r.get('timestamp')})"
                      for r in gone))


@app.command()
def restore(
    csv: Annotated[Path, typer.Argument(help="a long-layout leaderboard CSV (`bench leaderboard --format csv "
                                             "--layout long`), e.g. a committed leaderboards/*.csv")],
    workdir: WorkdirOpt = None,
) -> None:
    """Rebuild a lost workdir's records from a leaderboard CSV: tables, diagnostics and reports work again, and
    a resumed sweep skips the restored cells and checks each model it retrains against its restored clean cell."""
    from varmixup_bench.results.restore import restore as restore_records
    from varmixup_bench.core.workdir import check_creatable, resolve_workdir

    added, there = restore_records(csv, check_creatable(resolve_workdir(workdir, create=False)))  # made once it reads
    console.out.print(f"restored {added} record(s) from {csv} ({there} already in the store); the CSV holds no weights: "
                      f"a resumed sweep retrains the models it needs")


@app.command("export")
def export_command(
    output: Annotated[Path, typer.Argument(help="the JSONL file to write (one record per line)")],
    retired: Annotated[bool, typer.Option("--retired", help="also the retired records, each with its "
                                                             "retired_reason")] = False,
    workdir: WorkdirOpt = None,
) -> None:
    """Write the store's records as JSON lines: a backup, a file to share, or the way back from a damaged
    results.sqlite (`bench import`)."""
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.core.workdir import existing_workdir

    n = ResultStore(existing_workdir(workdir)).export_jsonl(output, retired=retired)
    console.out.print(f"exported {n} record(s) to {output}")


@app.command("import")
def import_command(
    source: Annotated[Path, typer.Argument(help="a JSONL file of records (`bench export`, or an old results.jsonl)")],
    workdir: WorkdirOpt = None,
) -> None:
    """Add the records of a JSONL file to the store, in one transaction: a record already stored is kept once,
    and a line that does not parse is moved to <workdir>/results.quarantine.jsonl and reported."""
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.core.workdir import resolve_workdir

    if not source.is_file():
        raise BenchError(f"{source}: no such file")
    store = ResultStore(resolve_workdir(workdir))
    read, added, bad = store.import_jsonl(source)
    if bad and not read:
        raise BenchError(f"no record in {source}: none of its {len(bad)} line(s) parses as a record (JSON objects "
                         f"with dataset, defense, attack, eps, accuracies, n_examples and timestamp); they were "
                         f"copied to {store.quarantine_path}")
    console.out.print(f"imported {read} record(s) from {source} into {store.path} ({added} new, {read - added} already "
                      f"stored)")
    if bad:
        console.err.print(f"[yellow]warning:[/] {len(bad)} line(s) of {source} do not parse as records (line "
                          f"{', '.join(map(str, bad[:10]))}{'…' if len(bad) > 10 else ''}); they were moved to "
                          f"{store.quarantine_path}", highlight=False, soft_wrap=True)

