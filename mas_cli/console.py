"""Console output: a rich progress bar on a terminal, plain log lines otherwise (CI, pipes)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(highlight=False)


def fail(message: str, code: int = 2) -> None:
    """The one-line error for bad input: no traceback, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


class StepProgress:
    """Progress over training steps, with a status string (e.g. current validation accuracy)."""

    def __init__(self, title: str, total: int, start: int = 0):
        self.title, self.total = title, total
        self.bar = None
        if console.is_terminal:
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
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.bar.stop()

    def advance(self, step: int) -> None:
        if self.bar:
            self.bar.update(self.task_id, completed=step)

    def report(self, step: int, status: str) -> None:
        if self.bar:
            self.bar.update(self.task_id, completed=step, status=status)
        else:
            console.print(f"{self.title} step {step}/{self.total} {status}")
