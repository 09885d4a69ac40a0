"""Console output. On a terminal: rich progress bars that keep their step count, rate, elapsed
time and ETA at any width from 80 columns (the label is shortened, never the numbers). Anywhere
else (pipes, CI, logs): plain lines, one event each, never wrapped by us; every message is written
to fit 80 columns, and a long path gets a line of its own.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

console = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
WIDTH = 80  # what every plain message is written to fit


class RateColumn(ProgressColumn):
    """Steps per second."""

    def render(self, task) -> Text:
        speed = task.speed
        return Text("" if speed is None else f"{speed:.1f} it/s", style="progress.data.speed")


def _fixed(width: int) -> Column:
    return Column(no_wrap=True, min_width=width)


def bar_columns(eta: ProgressColumn | None = None) -> list[ProgressColumn]:
    """Label, bar, steps, status, rate, elapsed, ETA: every column but the label has a fixed
    width, and the label gets what is left (cut with an ellipsis), so the numbers always show."""
    numbers = [
        BarColumn(bar_width=10),
        MofNCompleteColumn(table_column=_fixed(11)),
        TextColumn("{task.fields[status]}", table_column=_fixed(9)),
        RateColumn(table_column=_fixed(10)),
        TimeElapsedColumn(table_column=_fixed(7)),
        eta or TimeRemainingColumn(table_column=_fixed(7)),
    ]
    reserved = 10 + 11 + 9 + 10 + 7 + 11 + len(numbers)  # the ETA column is at most 11 wide
    label = TextColumn(
        "{task.description}",
        table_column=Column(no_wrap=True, overflow="ellipsis", max_width=max(8, console.width - reserved)),
    )
    return [label, *numbers]


def path_line(label: str, path) -> None:
    """`label path` on one line, or the path on a line of its own when together they are long."""
    text = f"{label} {path}"
    if len(text) <= WIDTH:
        console.print(text)
    else:
        console.print(label)
        console.print(str(path))


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
    """The one-line error for bad input: no traceback, exit status 2. A line break inside the
    message (an override the user typed with one, say) is shown as \\n: one line, always."""
    one_line = str(message).strip().replace("\r", "\\r").replace("\n", "\\n")
    print(f"error: {one_line}", file=sys.stderr)
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
            self.bar = Progress(*bar_columns(), console=console, transient=True)
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

    def report(self, step: int, short: str, full: str) -> None:
        """`short` in the bar (at most 9 characters, e.g. `IIA 0.951`); `full` in the log line."""
        if self.bar:
            self.bar.update(self.task_id, completed=step, status=short)
        else:
            console.print(f"{self.title} step {step}/{self.total} {full}")
