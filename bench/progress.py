"""Rich progress bars on stderr (so stdout stays clean for tables and JSON); a no-op when disabled."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

stderr_console = Console(stderr=True)


class _Silent:
    def add_task(self, *a, **k) -> int:
        return 0

    def update(self, *a, **k) -> None:
        pass

    def advance(self, *a, **k) -> None:
        pass

    def remove_task(self, *a, **k) -> None:
        pass


@contextmanager
def progress(enabled: bool = True) -> Iterator[Progress | _Silent]:
    if not enabled:
        yield _Silent()
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr_console,
        transient=False,
    )
    with bar:
        yield bar
