"""Console output: a rich progress bar on a terminal, plain log lines otherwise (CI, pipes)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(highlight=False)

# A live display that step bars join instead of starting their own (rich allows one at a time):
# `mas pipeline` shows its stages and the running job's steps together.
_shared: Progress | None = None


@contextmanager
def shared_progress(progress: Progress) -> Iterator[Progress]:
    global _shared
    _shared = progress
    try:
        with progress:
            yield progress
    finally:
        _shared = None


def fail(message: str, code: int = 2) -> None:
    """The one-line error for bad input: no traceback, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


class StepProgress:
    """Progress over training steps, with a status string (e.g. current validation accuracy)."""

    def __init__(self, title: str, total: int, start: int = 0):
        self.title, self.total = title, total
        self.bar, self.shared = None, _shared is not None
        if self.shared:
            self.bar = _shared
            self.task_id = self.bar.add_task(f"  {title}", total=total, completed=start, status="")
        elif console.is_terminal:
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self.task_id = self.bar.add_task(title, total=total, completed=start, status="")

    def __enter__(self) -> StepProgress:
        if self.bar and not self.shared:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.shared:
            self.bar.remove_task(self.task_id)
        elif self.bar:
            self.bar.stop()

    def advance(self, step: int) -> None:
        if self.bar:
            self.bar.update(self.task_id, completed=step)

    def report(self, step: int, status: str) -> None:
        if self.bar:
            self.bar.update(self.task_id, completed=step, status=status)
        else:
            console.print(f"{self.title} step {step}/{self.total} {status}")
