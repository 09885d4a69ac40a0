"""`mas pipeline`: the real presets compose into the jobs they promise, bad input is refused before
anything runs, and a small end-to-end run reuses its work and adds only what is missing."""

from __future__ import annotations

import time

import pytest

from mas_cli.alignment.settings import swapped
from mas_cli.composition import config_names
from mas_cli.errors import ConfigError
from mas_cli.pipeline import execute
from mas_cli.pipeline.overview import short
from mas_cli.pipeline.plan import plan_pipeline
from tests.cli import run_printing, snapshot
from tests.conftest import compose_config, result_files, run_cli
from tests.mistakes import PIPELINE_MISTAKES


def plan(tmp_path, *overrides):
    cfg = compose_config("pipeline", [f"paths.root={tmp_path / 'out'}", *overrides])
    return plan_pipeline(cfg)


def fits(jobs):
    """(method, site, k, models) of each align or similarity job."""
    found = []
    for job in jobs:
        c = job.config
        models = tuple(c.models) if "models" in c else (c.a, c.b)
        method = c.get("method", "similarity")
        found.append((method, c.site, c.get("k"), models))
    return sorted(found, key=str)


def test_default_is_one_joint_fit_over_two_seeds_of_gru_and_lstm(tmp_path):
    p = plan(tmp_path)
    assert [job.label for job in p.train] == ["count/gru/0", "count/gru/1", "count/lstm/0", "count/lstm/1"]
    assert fits(p.align) == [
        ("mas", "hidden", 16, ("count/gru:0", "count/gru:1", "count/lstm:0", "count/lstm:1")),
    ]
    assert p.align[0].config.directions == "all"
    assert not any(job.done for job in p.train + p.align)
    assert not (tmp_path / "out").exists()  # planning writes nothing


def test_pairs_and_reference_fits(tmp_path):
    pairs = plan(tmp_path, "pipeline.fits=pairs", "pipeline.archs=[gru,lstm,transformer]", "pipeline.seeds=[0]")
    assert [tuple(job.config.models) for job in pairs.align] == [
        ("count/gru:0", "count/lstm:0"),
        ("count/gru:0", "count/transformer:0"),
        ("count/lstm:0", "count/transformer:0"),
    ]
    ref = plan(tmp_path, "pipeline.fits=reference", "pipeline.reference=[gru:0]", "pipeline.archs=[lstm]")
    assert [job.label for job in ref.train] == ["count/lstm/0", "count/lstm/1", "count/gru/0"]
    assert [tuple(job.config.models) for job in ref.align] == [
        ("count/lstm:0", "count/gru:0"),
        ("count/lstm:1", "count/gru:0"),
    ]


@pytest.mark.parametrize(
    ("preset", "n_models", "expected_fits"),
    [
        ("seeds_and_archs", 6, {("mas", "hidden", 16): 1, ("das", "hidden", 16): 6}),
        ("embedding_site", 6, {("mas", "hidden", 16): 1, ("mas", "embed", 16): 1}),
        ("task_variants", 8, {("mas", "hidden", 16): 6}),
        (
            "subspace_sweep",
            4,
            {(m, "hidden", k): 1 if m == "mas" else 4 for m in ("mas", "das") for k in (1, 2, 4, 8, 16, 32)},
        ),
        (
            "baselines",
            6,
            {("mas", "hidden", 16): 1, ("das", "hidden", 16): 6, ("similarity", "hidden", None): 15}
            | {("stitch", "hidden", k): 30 for k in ("full", 2, 4, 16)}
            | {("clmas", "hidden", 16): 30, ("accessible_only", "hidden", 16): 30}
            | {("latent_stitch", "hidden", "full"): 30},
        ),
        (
            "paper",  # seven parts; the models and fits they share are planned once (C7 adds 3 at swap=full)
            12,
            {("mas", "hidden", k): n for k, n in ((2, 3), (4, 3), (16, 15), (128, 3))}
            | {("mas", "embed", 4): 3, ("mas", "embed", 16): 3}
            | {("stitch", "hidden", 2): 6, ("stitch", "hidden", 128): 6}
            | {("similarity", "hidden", None): 6, ("similarity", "embed", None): 3}
            | {("clmas", "hidden", 16): 6, ("accessible_only", "hidden", 16): 6}
            | {("das", "hidden", 4): 3, ("das", "hidden", 16): 18},
        ),
    ],
)
def test_each_preset_plans_its_jobs(tmp_path, preset, n_models, expected_fits):
    p = plan(tmp_path, f"experiment={preset}")
    assert len(p.train) == n_models
    counted: dict = {}
    for method, site, k, _ in fits(p.align):
        counted[(method, site, k)] = counted.get((method, site, k), 0) + 1
    assert counted == expected_fits


def test_every_preset_is_tested():
    assert config_names("experiment") == [
        "arithmetic_vs_count",
        "baselines",
        "embedding_site",
        "lm_case",  # tests/test_lm_case.py runs it, shrunk
        "paper",
        "seeds_and_archs",
        "subspace_sweep",
        "task_variants",
        "which_program",
    ]


def test_stitching_unimas_and_similarity_cover_pairs_within_each_fit(tmp_path):
    p = plan(
        tmp_path, "pipeline.seeds=[0]", "pipeline.methods=[stitch,unimas,similarity]", "pipeline.sites=[hidden,embed]"
    )
    g, l_ = "count/gru:0", "count/lstm:0"
    assert fits(p.align) == sorted(
        [
            (m, site, 16 if m == "unimas" else "full", pair)
            for m in ("stitch", "unimas")
            for site in ("hidden", "embed")
            for pair in ((g, l_), (l_, g))
        ]
        + [("similarity", site, None, (g, l_)) for site in ("hidden", "embed")],
        key=str,
    )
    assert {job.stage for job in p.align} == {"align", "similarity"}


def test_which_program_tests_three_hypotheses_inside_every_model(tmp_path):
    p = plan(tmp_path, "experiment=which_program")
    assert len(p.train) == 6
    found = sorted((j.config.causal_model, j.config.swap, str(j.config.k), j.config.method) for j in p.align)
    expected = [("context", "full", "full", "das")] * 6 + [("up_down", "count", "16", "das")] * 6
    assert found == sorted(expected + [("up_up", "resp_count", "16", "das")] * 6)
    assert all(len(j.config.models) == 1 for j in p.align)


def test_arithmetic_vs_count_maps_count_onto_cumu_val_in_one_joint_fit(tmp_path):
    p = plan(tmp_path, "experiment=arithmetic_vs_count")
    assert [j.label for j in p.train] == ["count/gru/0", "count/gru/1", "arithmetic/gru/0", "arithmetic/gru/1"]
    (fit,) = p.align
    assert swapped(fit.config) == ["count"] and fit.config.swap_by_task.arithmetic == "cumu_val"
    assert len(fit.config.models) == 4 and fit.config.directions == "all"


def test_task_variants_fit_each_variant_with_the_multi_object_reference(tmp_path):
    p = plan(tmp_path, "experiment=task_variants")
    for job in p.align:
        variant, *reference = job.config.models
        assert reference == ["count/gru:0", "count/gru:1"]
        assert variant.split("/")[0] in ("same_object", "count_mod", "count_round")


# Mistakes the planner refuses before anything runs (tests/test_bad_input.py runs them through the CLI too).
@pytest.mark.parametrize(("override", "message"), PIPELINE_MISTAKES)
def test_bad_input_is_refused_before_anything_runs(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        plan(tmp_path, *override.split(" "))
    assert not (tmp_path / "out").exists()


def test_cli_refuses_an_empty_sweep_in_one_line(tmp_path):
    done = run_cli("pipeline", "pipeline.archs=[]", "paths.root=out", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: pipeline.archs is empty: the sweep has nothing to run; name at least one"
    ]
    assert not (tmp_path / "out").exists()


SMOKE = [
    "budget=smoke",
    "budget.val_size=50",
    "budget.heldout_size=50",
    'pipeline.train_overrides=["arch.width=16"]',
    "pipeline.allow_undertrained=true",  # smoke models are not trained to criterion
    "paths.root=out",
]


def test_cli_runs_in_parallel_reuses_finished_work_and_adds_only_a_new_seed(tmp_path):
    code, planned, err = run_printing(["pipeline", "plan=true", "pipeline.seeds=[0]", *SMOKE], tmp_path)
    assert code == 0, err
    assert "| train | 1 | count/gru | 20 |" in planned and "0 job(s) already in the root" in planned
    assert not (tmp_path / "out").exists()  # a plan runs and writes nothing
    first = run_cli("pipeline", "pipeline.seeds=[0]", "pipeline.jobs=2", *SMOKE, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "[train 2/2]" in first.stdout
    assert "mean cross-model IIA" in first.stdout
    assert all(len(line) <= 80 for line in first.stdout.splitlines()), first.stdout  # a pipe: 80 columns
    out = tmp_path / "out"
    assert (out / "report" / "summary.md").is_file()
    assert (out / "report" / "heatmap-mas-hidden-count-k16.png").is_file()
    assert sorted(p.name for p in (out / "pipeline" / "logs").iterdir()) == [
        "train-count_gru_0.log",
        "train-count_lstm_0.log",
    ]
    written = (out / "report" / "summary.md").read_text()
    rebuilt = run_cli("report", "paths.root=out", "out=rebuilt", cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (out / "rebuilt" / "summary.md").read_text() == written  # from the run directories alone
    gru0 = out / "models" / "count" / "gru" / "seed0" / "model.pt"
    made = gru0.stat().st_mtime_ns

    again = run_cli("pipeline", "pipeline.seeds=[0]", "pipeline.jobs=2", *SMOKE, cwd=tmp_path)  # no job left to share
    assert again.returncode == 0, again.stderr
    assert "[train" not in again.stdout and "[align" not in again.stdout  # nothing left to run

    before = snapshot(out)
    code, planned, err = run_printing(["pipeline", "plan=true", "pipeline.seeds=[0,1]", *SMOKE], tmp_path)
    assert code == 0, err
    assert "2 job(s) already in the root (reused)" in planned and "| align | 1 | mas" in planned
    assert snapshot(out) == before
    more = run_cli("pipeline", "pipeline.seeds=[0,1]", *SMOKE, cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert "[train 2/2]" in more.stdout and "[train 3/" not in more.stdout  # only the two seed-1 models
    assert "[align 1/1]" in more.stdout
    assert gru0.stat().st_mtime_ns == made
    assert len(result_files(out / "alignments")) == 2  # the 2-model fit stays beside the 4-model one


def test_a_jobs_wall_time_includes_its_work(monkeypatch):
    """Each stage's outcome times the job itself (a similarity job once reported 0.0 s: the clock
    was read before the call, in the same argument list)."""
    for stage, name in (("similarity", "similarity"), ("align", "align"), ("train", "train_model")):
        monkeypatch.setattr(execute, name, lambda cfg: time.sleep(0.2) or _Done())
        assert execute.run_job(stage, "a job", {}, 1).wall_s >= 0.2, stage


class _Done:
    rows, run_dir, metrics = None, "", {"trained_to_criterion": True}


@pytest.mark.parametrize(
    "label, line",
    [
        ("rsa/cka hidden: count/transformer/0 ~ count/transformer/1", "rsa/cka hidden: 2 models"),
        ("mas hidden count k16: count/gru/0 + count/gru/1 + count/lstm/0", "mas hidden count k16: 3 models"),
        ("mas hidden count k16: count/gru/0", "mas hidden count k16: count/gru/0"),
    ],
)
def test_a_long_job_label_counts_its_models(label, line):
    assert short(label) == line


@pytest.mark.parametrize(
    ("method", "cost"),
    [("mas", 4.0), ("unimas", 2.0), ("stitch", 1.0), ("clmas", 2.2), ("accessible_only", 2.0), ("latent_stitch", 0.1)],
)
def test_a_fits_estimate_sums_its_directions_by_how_they_learn(tmp_path, method, cost):
    """Behaviour-trained directions cost 1, latent-only ones 0.1, untrained ones nothing."""
    from mas_cli.pipeline.estimate import align_step_seconds

    job = plan(tmp_path, f"pipeline.methods=[{method}]", "pipeline.seeds=[0]").align[0]  # gru → lstm

    class Costs:
        def of(self, cfg, source, target, latent):
            return 0.1 if latent else 1.0

    assert align_step_seconds(job, Costs()) == pytest.approx(cost)


def test_parts_must_be_pipeline_settings(tmp_path):
    with pytest.raises(ConfigError, match=r"pipeline.parts\[0\] names unknown pipeline key\(s\) arches"):
        plan(tmp_path, "pipeline.parts=[{arches: [gru]}]")
