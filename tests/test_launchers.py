"""Sweeps through Hydra's launchers: joblib (parallel jobs), submitit (local; the SLURM preset
composes), with the model store shared between jobs."""

from __future__ import annotations

from hydra import compose, initialize_config_module

from tests.conftest import complete, result_files, run_cli

SMOKE = ["budget=smoke", "arch.width=16", "budget.val_size=50", "budget.heldout_size=50", "threads=1"]


def _complete_entries(root):
    seeds = [p for p in (root / "models").glob("*/*/seed*") if not p.name.endswith(".lock")]
    return sorted(p.relative_to(root).as_posix() for p in seeds if complete(p))


def test_joblib_sweep_runs_two_jobs_in_parallel(tmp_path):
    done = run_cli(
        "train",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "arch=gru,lstm",
        *SMOKE,
        "paths.root=out",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "Joblib" in done.stdout + done.stderr
    assert _complete_entries(tmp_path / "out") == ["models/count/gru/seed0", "models/count/lstm/seed0"]


def test_submitit_local_sweep_completes(tmp_path):
    done = run_cli("train", "-m", "hydra/launcher=submitit_local", "seed=0,1", *SMOKE, "paths.root=out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _complete_entries(tmp_path / "out") == ["models/count/gru/seed0", "models/count/gru/seed1"]
    (record,) = (tmp_path / "out" / "sweeps" / "train").iterdir()  # one folder per sweep: never overwritten
    assert (record / "multirun.yaml").is_file() and {p.name for p in record.iterdir()} >= {"0", "1"}


def test_parallel_alignment_jobs_share_one_missing_model(tmp_path):
    """Both jobs need the missing gru:0; the store lock makes one train it and the other reuse it."""
    tiny = ["budget=smoke", 'train_overrides=["arch.width=16"]', "allow_undertrained=true", "k=4", "threads=1"]
    done = run_cli(
        "align",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "a=gru:0",
        "b=gru:1,lstm:0",
        *tiny,
        "paths.root=out",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert len(result_files(tmp_path / "out" / "alignments")) == 2
    assert _complete_entries(tmp_path / "out") == [
        "models/count/gru/seed0",
        "models/count/gru/seed1",
        "models/count/lstm/seed0",
    ]


def test_the_slurm_preset_composes_onto_submitit():
    with initialize_config_module(config_module="mas_cli.conf", version_base="1.3"):
        cfg = compose(config_name="align", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.cpus_per_task == 2 and launcher.timeout_min > 0
