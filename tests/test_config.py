"""Config composition of every group option, and every bad-input message."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mas_cli.config import validate_train
from mas_cli.errors import ConfigError
from mas_cli.tasks import task_from_config
from tests.conftest import compose_config

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("task", options("task"))
@pytest.mark.parametrize("arch", options("arch"))
def test_every_task_and_arch_composes_and_validates(tmp_path, task, arch):
    cfg = compose_config("train", ["budget=smoke", f"task={task}", f"arch={arch}", f"paths.root={tmp_path}"])
    validate_train(cfg)
    built = task_from_config(cfg.task)
    assert built.name == task
    assert len(built.sample(4, np.random.default_rng(0)).tokens) == 4


@pytest.mark.parametrize("budget", options("budget"))
def test_every_budget_composes_and_validates(small_train_cfg, budget):
    cfg = small_train_cfg(f"budget={budget}")
    validate_train(cfg)
    assert cfg.budget.name == budget


def test_transformer_trains_with_void_tokens_by_default(small_train_cfg):
    assert small_train_cfg("arch=transformer").task.void_p == 0.2
    assert small_train_cfg("arch=gru").task.void_p == 0.0
    assert small_train_cfg("arch=transformer", "task.void_p=0").task.void_p == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["arch.width=-4"], "arch.width must be a positive integer"),
        (["arch=lstm", "arch.width=33"], "arch.width must be even for lstm"),
        (["task.void_p=1.0"], r"task.void_p must be in \[0, 1\)"),
        (["task.void_p=-0.1"], r"task.void_p must be in \[0, 1\)"),
        (["task.min_count=5", "task.max_count=3", "task.held_out=[]"], "the maximum .3. must be at least"),
        (["task.max_count=5", "task.held_out=[1,2,3,4,5]"], "covers every count"),
        (["task.held_out=[30]"], "must lie within"),
        (["task=arithmetic", "task.max_ops=25"], "must not exceed task.max_value"),
        (["device=tpu"], "device must be one of auto, cpu, cuda"),
        (["budget.lr=0"], "budget.lr must be positive"),
        (["threads=0"], "threads must be a positive integer"),
        # a value of the wrong type gets the same one line, never a TypeError traceback
        (["budget.lr=abc"], "budget.lr must be positive"),
        (["budget.criterion=x"], r"budget.criterion must be in \(0, 1\]"),
        (["arch.dropout=x"], r"arch.dropout must be in \[0, 1\)"),
        (["arch.grad_clip=-1"], "arch.grad_clip must be in"),
        (["task.held_out=5"], "task.held_out must be a list of integers"),
        (["task=arithmetic", "task.max_ops=x"], "task.max_ops must be a positive integer"),
        (["task=arithmetic", "task.curriculum.start=0"], "task.curriculum.start must be a positive integer"),
        (["task=arithmetic", "task.curriculum.steps=-5"], "task.curriculum.steps must be an integer ≥ 0"),
        (["task=arithmetic", "task.curriculum=3"], "task.curriculum must be null or {start"),
        (["seed=true"], "seed must be an integer in 0..4294967295"),
        (["seed=18446744073709551616"], "seed must be an integer in 0..4294967295"),
        (["paths.root=null"], "paths.root must name a folder"),
        (["paths.root="], "paths.root must name a folder"),
    ],
)
def test_bad_values_get_one_line_that_says_what_to_change(small_train_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message) as error:
        validate_train(small_train_cfg(*overrides))
    assert "\n" not in str(error.value)


def test_unwritable_root_is_refused(small_train_cfg, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        validate_train(small_train_cfg(f"paths.root={a_file / 'out'}"))
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o500)
    try:
        if os.geteuid() != 0:  # root can write anywhere; the file case above covers root
            with pytest.raises(ConfigError, match="not writable"):
                validate_train(small_train_cfg(f"paths.root={read_only / 'out'}"))
    finally:
        read_only.chmod(0o700)
    assert not (read_only / "out").exists()
