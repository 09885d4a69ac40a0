"""The pipeline's overview while it runs: one line per stage with counts and an ETA (live on a
terminal, with the running job's step bar beneath; plain lines in logs and CI)."""

from __future__ import annotations

import re
from contextlib import ExitStack
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.progress import Progress, ProgressColumn
from rich.table import Column
from rich.text import Text

from mas_cli.console import bar_columns, console, shared_progress

if TYPE_CHECKING:
    from mas_cli.pipeline.execute import Outcome


def short(label: str, most: int = 44) -> str:
    """A job label for one console line: the models of a long one counted, not listed."""
    if len(label) <= most or ": " not in label:
        return label
    setting, models = label.split(": ", 1)
    return f"{setting}: {len(re.split(' [+~] ', models))} models"  # a fit's ' + ', a similarity's ' ~ '


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class EtaColumn(ProgressColumn):
    """Stages carry their own estimate (field `eta`); step bars use rich's rate estimate, an upper
    bound since fits and training usually stop early."""

    def render(self, task) -> Text:
        if "eta" in task.fields:
            return Text(f"ETA {task.fields['eta']}", style="progress.remaining")
        remaining = task.time_remaining
        return Text("" if remaining is None else f"≤{clock(remaining)}", style="progress.remaining")


class StageProgress:
    """Counts and ETA of one stage: the ETA is the mean wall time of this stage's finished jobs
    times the jobs left, divided by the jobs running side by side."""

    def __init__(self, overview: Overview, stage: str, total: int, workers: int):
        self.overview, self.stage, self.total, self.workers = overview, stage, total, workers
        self.walls: list[float] = []
        self.task_id = None
        if overview.live:
            self.task_id = overview.progress.add_task(stage, total=max(total, 1), status="", eta="…")

    def eta(self) -> str:
        left = self.total - len(self.walls)
        if not self.walls:
            return "…"
        return clock(sum(self.walls) / len(self.walls) * left / min(self.workers, max(left, 1)))

    def finished(self, outcome: Outcome) -> None:
        """One line per finished job (its error, if any, on the next)."""
        self.walls.append(outcome.wall_s)
        if outcome.error:
            verdict = "[red]failed[/]"
        elif outcome.trained_to_criterion is False:
            verdict = "[yellow]below criterion[/]"
        else:
            verdict = "done"
        counter = escape(f"[{self.stage} {len(self.walls)}/{self.total}]")
        console.print(f"{counter} {escape(short(outcome.label))}: {verdict}, {outcome.wall_s:.1f} s, ETA {self.eta()}")
        if outcome.error:
            console.print(escape(f"  {outcome.error}"))
        if self.task_id is not None:
            self.overview.progress.update(self.task_id, completed=len(self.walls), eta=self.eta())

    def close(self) -> None:
        if self.task_id is not None:
            self.overview.progress.update(self.task_id, completed=max(self.total, 1), eta="0:00:00")


class Overview:
    def __init__(self):
        self.live = console.is_terminal
        self.progress = Progress(
            *bar_columns(EtaColumn(table_column=Column(no_wrap=True, min_width=11))), console=console
        )
        self._stack = ExitStack()

    def __enter__(self) -> Overview:
        if self.live:
            self._stack.enter_context(shared_progress(self.progress))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def stage(self, name: str, total: int, workers: int) -> StageProgress:
        return StageProgress(self, name, total, workers)
