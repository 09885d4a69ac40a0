"""`mas train`: the store entry, reuse, refusal of silent overwrites, resume, and the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from mas_cli import store
from mas_cli.errors import ConfigError, StoreError
from mas_cli.training import Trainer, curriculum_cap, lr_factor, train_model
from tests.conftest import complete, run_cli
from tests.helpers import Interrupted, interrupted_and_resumed


def test_smoke_run_writes_a_complete_entry(small_train_cfg):
    result = train_model(small_train_cfg())
    assert not result.reused and complete(result.entry)
    metrics = json.loads((result.entry / "metrics.json").read_text())
    for key in ("val_task_acc", "heldout_task_acc", "trained_to_criterion", "steps", "wall_s"):
        assert key in metrics
    assert metrics["steps"] == 20
    payload = store.load_model_file(result.entry / "model.pt")
    assert payload["arch"] == "gru" and payload["config"]["width"] == 16
    assert not (result.entry / "checkpoint.pt").exists() and not any(result.entry.parent.glob(".seed0.work/*"))
    assert "val_task_acc" in (result.entry / "curve.csv").read_text().splitlines()[0]


def test_rerun_reuses_and_force_retrains(small_train_cfg):
    first = train_model(small_train_cfg())
    again = train_model(small_train_cfg())
    assert again.reused and again.metrics["wall_s"] == first.metrics["wall_s"]
    forced = train_model(small_train_cfg("force=true"))
    assert not forced.reused


def test_other_settings_never_overwrite_silently(small_train_cfg):
    train_model(small_train_cfg())
    with pytest.raises(ConfigError, match=r"budget.lr: 0.003 -> 0.01.*force=true"):
        train_model(small_train_cfg("budget.lr=0.01"))


def test_interrupted_run_resumes_to_the_same_model(small_train_cfg, tmp_path, monkeypatch):
    a, b = interrupted_and_resumed(small_train_cfg, tmp_path, monkeypatch)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)


def test_lr_schedule_warms_up_then_decays():
    assert lr_factor(0, 10, 100) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100) == pytest.approx(1.0)
    assert lr_factor(100, 10, 100) == pytest.approx(0.1)
    assert lr_factor(50, 10, 100) < lr_factor(20, 10, 100)


def test_the_curriculum_cap_rises_linearly_then_lifts():
    curriculum = OmegaConf.create({"start": 4, "steps": 100})
    caps = [curriculum_cap(curriculum, step, 20) for step in (0, 50, 99, 100, 5000)]
    assert caps == [4, 12, 19, None, None]
    assert curriculum_cap(None, 0, 20) is None  # no curriculum: every quantity from the start


def test_corrupt_model_file_gets_a_clear_error(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"not a model")
    with pytest.raises(StoreError, match="not a readable model file"):
        store.load_model_file(path)
    torch.save({"weights": 1}, path)
    with pytest.raises(StoreError, match="not a mas model file"):
        store.load_model_file(path)


SMOKE = ["budget=smoke", "arch.width=16", "budget.val_size=50", "budget.heldout_size=50"]


def test_cli_smoke_run(tmp_path):
    done = run_cli("train", *SMOKE, "paths.root=out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "trained_to_criterion" in done.stdout
    assert complete(tmp_path / "out/models/count/gru/seed0")
    again = run_cli("train", *SMOKE, "paths.root=out", cwd=tmp_path)
    assert again.returncode == 0 and "reusing" in again.stdout


@pytest.mark.parametrize(
    "bad",
    [
        "arch.width=-1",
        "task.void_p=1.5",
        "task.min_count=9",
        "task.held_out=[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]",
    ],
)
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, bad):
    extra = ["task.max_count=5", "task.held_out=[]"] if "min_count" in bad else []
    done = run_cli("train", *SMOKE, *extra, bad, "paths.root=out", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_unwritable_root(tmp_path):
    (tmp_path / "a_file").write_text("")
    done = run_cli("train", *SMOKE, "paths.root=a_file/out", cwd=tmp_path)
    assert done.returncode == 2 and "is a file, not a folder" in done.stderr


def test_cli_help_and_unknown_command(tmp_path):
    listed = run_cli("--help", cwd=tmp_path)
    assert listed.returncode == 0 and "train" in listed.stdout
    helped = run_cli("train", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "arch=<gru>  " in helped.stdout
    assert "hf_qwen2 | lstm | transformer" in helped.stdout
    unknown = run_cli("trian", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown command 'trian'" in unknown.stderr


def test_cli_multirun_trains_every_combination(tmp_path):
    done = run_cli("train", "-m", "arch=gru,lstm,transformer", "seed=0,1", *SMOKE, "paths.root=out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for arch in ("gru", "lstm", "transformer"):
        for seed in (0, 1):
            assert complete(tmp_path / f"out/models/count/{arch}/seed{seed}")


def test_interrupted_force_run_leaves_the_old_entry_complete(small_train_cfg, monkeypatch):
    old = train_model(small_train_cfg())

    def interrupt(self):
        raise Interrupted

    monkeypatch.setattr(Trainer, "_train_step", interrupt)
    with pytest.raises(Interrupted):
        train_model(small_train_cfg("force=true"))
    assert complete(old.entry)
    assert store.read_metrics(old.entry)["wall_s"] == old.metrics["wall_s"]
    assert train_model(small_train_cfg()).reused  # the old entry, still complete


def test_a_diverging_run_is_refused_and_publishes_nothing(small_train_cfg):
    """A learning rate that ends in NaN weights is told in one line; no NaN model is ever stored."""
    cfg = small_train_cfg("budget.lr=1e20")
    with pytest.raises(ConfigError, match=r"training diverged by step 10 \(loss nan\); lower budget.lr"):
        train_model(cfg)
    assert not complete(store.model_dir(cfg.paths.root, "count", "gru", 0))


def test_the_threads_a_model_was_trained_with_are_recorded(small_train_cfg):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train_model(small_train_cfg())
    finally:
        torch.set_num_threads(before)
    assert result.metrics["threads"] == 1
