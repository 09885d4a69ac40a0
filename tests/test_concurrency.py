"""Jobs that share a store: four processes started together that need the same missing models each
get their result while each model is trained once; two pipelines on one root both finish with
one set of results."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import complete, result_files

SMOKE = ["budget=smoke", 'train_overrides=["arch.width=16"]', "allow_undertrained=true", "threads=1"]


def start(argv: list[str], cwd) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "mas_cli.cli", *argv, "paths.root=out"]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(jobs: list[subprocess.Popen]) -> list[str]:
    outputs = [job.communicate(timeout=600) for job in jobs]
    assert [job.returncode for job in jobs] == [0] * len(jobs), [err[-1500:] for _, err in outputs]
    return [out for out, _ in outputs]


def trained_by(outputs: list[str], label: str) -> int:
    """How many processes trained the model (the last step's log line is printed once per training)."""
    return sum(f"train {label} step 20/20" in out for out in outputs)


def test_four_jobs_needing_the_same_missing_models_train_each_once(tmp_path):
    settings = [["k=2"], ["k=4"], ["method=stitch"], ["method=unimas", "k=4"]]
    outputs = finish([start(["align", *SMOKE, "a=gru", "b=lstm", *extra], tmp_path) for extra in settings])
    assert trained_by(outputs, "count/gru/0") == 1 and trained_by(outputs, "count/lstm/0") == 1, outputs
    assert len(result_files(tmp_path / "out")) == 4  # every job its own result
    assert all(complete(tmp_path / "out" / "models" / "count" / arch / "seed0") for arch in ("gru", "lstm"))


def test_two_pipelines_on_one_root_finish_with_one_set_of_results(tmp_path):
    pipeline = ["pipeline", "budget=smoke", 'pipeline.train_overrides=["arch.width=16"]', "pipeline.seeds=[0]"]
    pipeline += ["pipeline.allow_undertrained=true", "threads=1"]
    outputs = finish([start(pipeline, tmp_path), start(pipeline, tmp_path)])
    assert trained_by(outputs, "count/gru/0") == 1 and trained_by(outputs, "count/lstm/0") == 1, outputs
    assert sum("fitted in" in out for out in outputs) == 1  # the other waited, then reused the fit
    assert len(result_files(tmp_path / "out" / "alignments")) == 1
    for out in outputs:
        assert "mean cross-model IIA" in out
