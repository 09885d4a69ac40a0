"""The pipeline's overview while it runs: one line per stage with counts and an ETA (live on a
terminal, with the running job's step bar beneath; plain lines in logs and CI)."""

from __future__ import annotations

from contextlib import ExitStack

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from mas_cli.console import console, shared_progress
from mas_cli.pipeline.execute import Outcome


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
        return Text("" if remaining is None else f"≤ {clock(remaining)} left", style="progress.remaining")


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
        self.walls.append(outcome.wall_s)
        if outcome.error:
            verdict = f"[red]failed[/]: {escape(outcome.error)}"
        elif outcome.trained_to_criterion is False:
            verdict = "[yellow]did not reach the training criterion[/]"
        else:
            verdict = "done"
        console.print(
            f"{escape(f'[{self.stage} {len(self.walls)}/{self.total}]')} {escape(outcome.label)}: {verdict} "
            f"({outcome.wall_s:.1f} s) · stage ETA {self.eta()}"
        )
        if self.task_id is not None:
            self.overview.progress.update(self.task_id, completed=len(self.walls), eta=self.eta())

    def close(self) -> None:
        if self.task_id is not None:
            self.overview.progress.update(self.task_id, completed=max(self.total, 1), eta="0:00:00")


class Overview:
    def __init__(self):
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            EtaColumn(),
            console=console,
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
