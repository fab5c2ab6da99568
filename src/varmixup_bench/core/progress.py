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


class _Nested:
    """Tasks added inside an outer bar (a report's bar across cells): rows of the outer display, removed when
    the inner block ends (rich shows one live display at a time)."""

    def __init__(self, outer: Progress) -> None:
        self.outer, self.tasks = outer, []

    def add_task(self, *a, **k) -> int:
        task = self.outer.add_task(*a, **k)
        self.tasks.append(task)
        return task

    def __getattr__(self, name):
        return getattr(self.outer, name)

    def close(self) -> None:
        for task in self.tasks:
            if task in self.outer.task_ids:
                self.outer.remove_task(task)


_active: list[Progress] = []


@contextmanager
def progress(enabled: bool = True) -> Iterator[Progress | _Silent]:
    if not enabled:
        yield _Silent()
        return
    if _active:  # inside another bar: add rows to it
        nested = _Nested(_active[-1])
        try:
            yield nested
        finally:
            nested.close()
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
        _active.append(bar)
        try:
            yield bar
        finally:
            _active.pop()
