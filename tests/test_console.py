"""What a person sees: in a pipe, plain lines that fit 80 columns with no path or number broken; on
a terminal of 80 columns or more, bars that keep their numbers; tables with many models in short
labels with a legend."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pandas as pd
from rich.console import Console
from rich.progress import Progress

import mas_cli.console as output
from mas_cli.console import tables


def test_a_piped_alignment_prints_lines_that_fit_80_columns(tmp_path):
    env = {**os.environ, "COLUMNS": "80", "PYTHONUNBUFFERED": "1"}
    argv = ["align", "a=gru", "b=lstm", "budget=smoke", "allow_undertrained=true", "paths.root=outputs"]
    done = subprocess.run(
        [sys.executable, "-m", "mas_cli.cli", *argv], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    run_dir = "outputs/alignments/mas-hidden-count-k16-s0-budget_smoke/count.gru.0+count.lstm.0"
    assert run_dir in lines  # the path whole, on a line of its own
    assert any(re.fullmatch(r"mean cross-model IIA: \d\.\d{3} \(without intervention: \d\.\d{3}\)", x) for x in lines)
    assert not any("\x1b[" in line or "[/" in line for line in lines)  # no colour codes, no markup


def render(width: int, draw) -> list[str]:
    """What `draw()` prints on a terminal console of `width` columns."""
    buffer = io.StringIO()
    before = output.console
    output.console = tables.console = Console(file=buffer, width=width, force_terminal=True, color_system=None)
    try:
        draw()
    finally:
        output.console = tables.console = before
    return [line for line in buffer.getvalue().splitlines() if line.strip()]


def test_bars_keep_their_numbers_at_80_columns():
    for width in (80, 120):

        def draw():
            bar = Progress(*output.bar_columns(), console=output.console, auto_refresh=False)
            task = bar.add_task("mas count/gru/0 count/gru/1 count/lstm/0 count/lstm/1", total=1000, status="IIA 0.951")
            bar.update(task, completed=250)
            bar.update(task, completed=260)
            output.console.print(bar.make_tasks_table(bar.tasks))

        (line,) = render(width, draw)
        assert len(line) <= width
        assert "260/1000" in line and "IIA 0.951" in line and "it/s" in line and re.search(r"\d:\d\d:\d\d", line)


def test_six_models_get_short_labels_and_a_legend():
    labels = [f"{task}/{arch}/0" for task in ("count", "count_mod") for arch in ("gru", "lstm", "transformer")]
    rows = pd.DataFrame(
        [
            {"src": s, "trg": t, "split": "val", "iia": 0.5, "iia_none": 0.1, "iia_lo": 0.4, "iia_hi": 0.6}
            | {"n": 500, "method": "mas", "variable": "count", "site": "hidden", "k": 16}
            for s in labels
            for t in labels
        ]
    )
    lines = render(80, lambda: tables.print_iia_table(rows, labels))
    assert all(len(line) <= 80 for line in lines), lines
    assert "M6 = count_mod/transformer/0" in lines
    header = next(line for line in lines if "source" in line)
    assert all(f"M{i}" in header for i in range(1, 7))
    names, legend = tables.short_labels(["count/gru/0", "count/gru/1", "count/lstm/0", "count/lstm/1"])
    assert names == ["count/gru/0", "count/gru/1", "count/lstm/0", "count/lstm/1"] and legend == []


def test_tensorboard_logger_writes_scalars_a_reader_gets_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import mas_cli as mas

    smoke = dict(budget="smoke", allow_undertrained=True, train_overrides=["arch.width=16"], logger="tensorboard")
    mas.align(["gru", "lstm"], root=tmp_path, k=4, **smoke)
    trained = EventAccumulator(str(next((tmp_path / "tensorboard" / "train").rglob("events.out.*")).parent)).Reload()
    assert [e.step for e in trained.Scalars("val_task_acc")] == [10, 20]
    assert trained.Scalars("loss")[-1].value > 0
    fitted = next((tmp_path / "tensorboard" / "align").rglob("events.out.*")).parent
    events = EventAccumulator(str(fitted)).Reload()
    assert "iia/val/count/gru/0->count/lstm/0/count" in events.Tags()["scalars"]
    assert [e.step for e in events.Scalars("mean_val_iia")] == [10, 20]
