"""`mas align` end to end on tiny models: files, reuse, resume, determinism, bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

import mas_cli as mas
from mas_cli.alignment import scoring
from mas_cli.alignment.directions import build_directions
from mas_cli.alignment.fit import Aligner
from mas_cli.alignment.job import read_alignment
from mas_cli.alignment.plan import plan_alignment
from mas_cli.alignment.swaps import Block
from mas_cli.errors import ConfigError, StoreError
from mas_cli.results import matrix_of
from mas_cli.zoo import load_frozen
from tests.cli import assert_one_line, run
from tests.conftest import compose_config, forge, result_files, run_cli
from tests.helpers import TINY, run_align

COLUMNS = ["method", "site", "k", "variable", "src", "trg", "split", "iia", "tok_acc", "n"]


COUNT = [Block("count", 0, 4)]


def test_two_models_write_tidy_results_and_a_reusable_run(tmp_path):
    result = run_align(tmp_path, "a=gru", "b=lstm")
    files = {p.name for p in result.run_dir.iterdir()}
    written = {"alignment.pt", "config.yaml", "curve.csv", "iia.csv", "items.csv", "manifest.json", ".hydra"}
    assert files == written  # no checkpoint: a finished run keeps only its results
    rows = pd.read_csv(result.run_dir / "iia.csv")
    assert set(COLUMNS) <= set(rows.columns)
    assert len(rows) == 4 * 2  # four ordered directions × train/val
    assert set(rows.src) == {"count/gru/0", "count/lstm/0"} and set(rows.method) == {"mas"}
    assert ((rows.iia >= 0) & (rows.iia <= 1)).all() and (rows.n > 0).all()
    curve = pd.read_csv(result.run_dir / "curve.csv")
    assert sorted(curve.step.unique()) == [10, 20]
    again = run_align(tmp_path, "a=gru", "b=lstm")
    assert again.reused and again.rows.equals(rows)


def test_same_seed_gives_identical_results_and_the_saved_alignment_reproduces_them(tmp_path):
    first = run_align(tmp_path / "one", "a=gru", "b=transformer")
    second = run_align(tmp_path / "two", "a=gru", "b=transformer")
    assert (first.run_dir / "iia.csv").read_text() == (second.run_dir / "iia.csv").read_text()
    payload = read_alignment(first.run_dir / "alignment.pt")
    cfg = compose_config("align", [*TINY, f"paths.root={tmp_path / 'one'}", "a=gru", "b=transformer"])
    plan = plan_alignment(cfg)
    models = [
        load_frozen(s, first.run_dir.parents[2] / "models" / s.task / s.arch / f"seed{s.seed}", "cpu", True)
        for s in plan.specs
    ]
    directions = build_directions(models, plan.pairs, "hidden", COUNT, cfg.budget.align, cfg.seed, "cpu")
    aligner = Aligner(plan.cfg, models, directions, "cpu")
    aligner.functions.load_state_dict(payload["functions"])
    val = first.rows[first.rows.split == "val"]
    for d, row in zip(directions, val.itertuples()):
        assert aligner.evaluate(d, d.val).iia == row.iia


def test_interrupted_run_resumes_to_the_same_results(tmp_path, monkeypatch):
    done = run_align(tmp_path / "whole", "a=gru", "b=lstm")
    real_step = Aligner.train_step

    def crash_after_15(self):
        if self.step == 15:
            raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(Aligner, "train_step", crash_after_15)
    with pytest.raises(KeyboardInterrupt):
        run_align(tmp_path / "cut", "a=gru", "b=lstm")
    run_dir = tmp_path / "cut" / done.run_dir.relative_to(tmp_path / "whole")
    work = run_dir.parent / f".{run_dir.name}.work"
    assert (work / "checkpoint.pt").exists() and not run_dir.exists()  # nothing incomplete is visible
    monkeypatch.setattr(Aligner, "train_step", real_step)
    resumed = run_align(tmp_path / "cut", "a=gru", "b=lstm")
    assert (resumed.run_dir / "iia.csv").read_text() == (done.run_dir / "iia.csv").read_text()


def test_a_retrained_model_is_refused_and_force_refits(tmp_path):
    first = run_align(tmp_path, "a=gru")
    assert set(first.rows.method) == {"das"} and len(first.rows) == 2
    other = run_align(tmp_path, "a=gru", "budget.align.lr=0.01")  # another setting: its own run directory
    assert other.run_dir.parent.name.endswith("-align.lr_0.01") and not other.reused
    retrain = ["train", "arch.width=16", "budget=smoke", "force=true", f"paths.root={tmp_path}"]
    assert run(retrain, tmp_path)[0] == 0  # the same settings (2 threads): the very same weights
    assert run_align(tmp_path, "a=gru").reused  # computed from exactly these weights: still valid
    assert run_cli(*retrain, "threads=1", cwd=tmp_path).returncode == 0  # weights differ by ~1e-7
    code, err = run(["align", *TINY, "a=gru", f"paths.root={tmp_path}"], tmp_path)
    assert_one_line(code, err, "computed from other weights of count/gru/0 (retrained or replaced since)")
    assert "add force=true" in err
    replaced = tmp_path / "elsewhere"  # the entry replaced by a copy of another store's model (2 threads)
    assert run([*retrain[:-1], f"paths.root={replaced}"], tmp_path)[0] == 0
    gru = tmp_path / "models" / "count" / "gru" / "seed0"
    refit = run_align(tmp_path, "a=gru", "force=true")
    assert not refit.reused and run_align(tmp_path, "a=gru").reused
    shutil.copytree((replaced / "models/count/gru/seed0").resolve(), gru.parent / ".seed0.v9")
    gru.unlink()
    gru.symlink_to(".seed0.v9")
    with pytest.raises(ConfigError, match=r"other weights of count/gru/0.*force=true"):
        run_align(tmp_path, "a=gru")
    with pytest.raises(ConfigError, match=r"other weights of count/gru/0"):
        mas.load_alignment(refit.run_dir)  # never applied to weights it was not fitted on


def test_three_models_give_a_three_by_three_table_from_one_fit(tmp_path):
    result = run_align(tmp_path, "models=[gru:0,gru:1,lstm:0]")
    matrix = matrix_of(result.rows, [s.label for s in result.specs])
    assert len(matrix) == 3 and all(len(row) == 3 and None not in row for row in matrix)
    assert len(pd.read_csv(result.run_dir / "iia.csv")) == 9 * 2


def test_directions_and_different_widths(tmp_path):
    small = 'train_overrides=["arch.width=8"]'
    run_align(tmp_path, "a=lstm", small)  # an 8-wide LSTM in the store
    result = run_align(tmp_path, "a=gru", "b=lstm", "directions=[0-1,1-1]", "k=full")
    assert list(zip(result.rows.src, result.rows.trg))[::2] == [("count/gru/0", "count/lstm/0"), ("count/lstm/0",) * 2]
    assert set(result.rows.k) == {8}  # capped at the smaller site
    with pytest.raises(ConfigError, match="k=9 is larger than the smallest site width"):
        run_align(tmp_path, "a=gru", "b=lstm", "k=9")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["a=gru", "k=0"], "k must be a positive integer"),
        (["a=gru", "k=many"], "k must be a positive integer"),
        (["a=gru", "k=17"], "k=17 is larger than the smallest site width"),
        (["a=gru", "site=middle"], "count/gru/0: site=middle: the model has no module middle"),
        (["a=gru", "swap=colour"], "swap=colour is not a variable of count/gru/0"),
        (["a=arithmetic/gru", "swap=count"], "swap=count is not a variable of arithmetic/gru/0"),
        (["a=gru", "orthogonal_map=householder"], "orthogonal_map must be one of"),
        (["a=gru", "b=lstm", "method=das"], "method=das aligns one model"),
        (["a=gru", "directions=[0-3]"], "directions item '0-3'"),
        (["a=gru", "directions=3"], "directions must be all, within, cross or a list"),
        (["a=gru", "train_overrides=5"], "train_overrides must be a list"),
        ([], "name the models to align"),
        (["a=gru", "models=[lstm]"], "not both"),
        (["a=gru", "b=gru:0"], "same model twice"),
        (["a=gru:x"], "is not \\[task/\\]arch\\[:seed\\]"),
        (["a=rnn"], "arch must be one of"),
        (["a=nosuchtask/gru"], "cannot compose the training config of nosuchtask/gru/0"),
        (["a=gru", "auto_train=false"], "count/gru/0 is not in the model store.*mas train task=count arch=gru seed=0"),
        (["a=gru", "budget.align.batch_size=0"], "budget.align.batch_size must be a positive integer"),
        (["a=gru", "method=stitch"], "method=stitch takes two models"),
        (["models=[gru,lstm,gru:1]", "method=unimas"], "method=unimas takes two models"),
        (["a=gru", "b=lstm", "method=stitch", "directions=within"], "method=stitch fixes its directions"),
        (["a=gru", "b=lstm", "method=probe"], "method must be one of mas, das, stitch, unimas"),
        (["a=gru", "align_fn=householder"], "align_fn must be one of orthogonal, gram_schmidt, linear"),
        (
            ["a=gru", "causal_model=up_up"],
            "swap=count is not a variable of count/gru/0's causal model; choose one of demo_count",
        ),
        (
            ["a=gru", "causal_model=up_sideways"],
            "causal_model=up_sideways does not fit count/gru/0: unknown causal model",
        ),
        (["a=gru", "causal_model=context", "swap=count"], "swap=count is not a variable.*choose one of full"),
        (["a=gru", "swap=[count,count]"], "names a variable twice"),
        (["a=gru", "swap=[full,count]"], "full already holds every variable"),
        (["a=gru", "swap=[count,phase]", "null_block=true", "k=8"], "need 17 dims, more than the smallest site width"),
        (["a=gru", "b=lstm", "swap=[count,phase]", "method=stitch"], "method=stitch swaps one variable"),
        (["a=gru", "swap=[count,colour]"], "swap=colour is not a variable"),
        (["a=gru", "b=arithmetic/gru", "swap_by_task.arithmetic=bogus"], "swap=bogus is not a variable of arithmetic"),
        (["a=gru", "swap=[count,phase]", "swap_by_task.arithmetic=cumu_val"], "swap_by_task maps one variable"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run_align(tmp_path / "out", *overrides)
    assert not (tmp_path / "out").exists()


def test_undertrained_foreign_and_corrupt_models_are_refused(tmp_path):
    run_align(tmp_path, "a=gru", "b=lstm")  # tiny smoke models: not trained to criterion
    with pytest.raises(ConfigError, match="did not reach its training criterion.*allow_undertrained=true"):
        run_align(tmp_path, "a=gru", "allow_undertrained=false")
    models = tmp_path / "models" / "count"
    shutil.copy(models / "lstm" / "seed0" / "model.pt", models / "gru" / "seed0" / "model.pt")
    with pytest.raises(StoreError, match="gru/seed0/model.pt is corrupt.*force=true"):
        run_align(tmp_path, "a=gru", "k=2")
    forge(models / "gru" / "seed0", "model.pt", (models / "lstm" / "seed0" / "model.pt").read_bytes())
    with pytest.raises(StoreError, match="does not hold a usable gru model"):
        run_align(tmp_path, "a=gru", "k=2")
    forge(models / "gru" / "seed0", "model.pt", b"not a model")
    with pytest.raises(StoreError, match="not a readable model file"):
        run_align(tmp_path, "a=gru", "k=2")


def test_embed_site_runs_for_every_architecture(tmp_path):
    result = run_align(tmp_path, "models=[gru,lstm,transformer]", "site=embed", "directions=within")
    assert set(result.rows.site) == {"embed"} and len(result.rows) == 3 * 2


def test_cli_prints_the_table_and_bad_input_exits_2(tmp_path):
    done = run_cli("align", *TINY, "a=gru", "b=lstm", "paths.root=out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "source \\ target" in done.stdout and "mean cross-model IIA" in done.stdout
    bad = run_cli("align", *TINY, "a=gru", "b=lstm", "k=0", "paths.root=fresh", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr
    assert not (tmp_path / "fresh").exists()
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    unwritable = run_cli("align", *TINY, "a=gru", "paths.root=a_file/out", cwd=tmp_path)
    assert unwritable.returncode == 2 and "not a folder" in unwritable.stderr


def test_cli_sweep_over_targets(tmp_path):
    done = run_cli("align", "-m", *TINY, "a=gru:0", "b=gru:1,lstm:0", "paths.root=out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    runs = sorted(p.parent.name for p in result_files(tmp_path / "out" / "alignments"))
    assert runs == ["count.gru.0+count.gru.1", "count.gru.0+count.lstm.0"]


def test_training_batches_are_uniform_samples_covering_every_item(tmp_path):
    result = run_align(tmp_path, "a=gru")
    assert result.rows.n.iloc[0] > 0
    cfg = compose_config("align", [*TINY, f"paths.root={tmp_path}", "a=gru", "budget.align.train_size=512"])
    model = load_frozen(plan_alignment(cfg).specs[0], tmp_path / "models/count/gru/seed0", "cpu", True)
    (direction,) = build_directions([model], [(0, 0)], "hidden", COUNT, cfg.budget.align, 0, "cpu")
    batches = direction.train.epoch_batches(32, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(512))  # an epoch covers every item once
    # not grouped by suffix length: each batch spans most of the range of lengths
    spread = np.mean([np.ptp(direction.train.extent[b]) for b in batches])
    assert spread >= 0.5 * np.ptp(direction.train.extent)


def test_eval_batch_size_does_not_change_scores(tmp_path, monkeypatch):
    result = run_align(tmp_path, "a=gru")
    cfg = compose_config("align", [*TINY, f"paths.root={tmp_path}", "a=gru"])
    model = load_frozen(plan_alignment(cfg).specs[0], tmp_path / "models/count/gru/seed0", "cpu", True)
    directions = build_directions([model], [(0, 0)], "hidden", COUNT, cfg.budget.align, 0, "cpu")
    aligner = Aligner(plan_alignment(cfg).cfg, [model], directions, "cpu")
    aligner.functions.load_state_dict(read_alignment(result.run_dir / "alignment.pt")["functions"])
    whole = aligner.evaluate(directions[0], directions[0].val)
    monkeypatch.setattr(scoring, "EVAL_BATCH", 5)
    pieces = aligner.evaluate(directions[0], directions[0].val)
    assert whole.iia == pieces.iia and whole.tok_acc == pieces.tok_acc
    assert whole.loss == pytest.approx(pieces.loss, rel=1e-5)


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        (["budget=quick"], "mas-hidden-count-k16-s0"),
        (
            ["budget=paper", "orthogonal_map=matrix_exp"],
            "mas-hidden-count-k16-s0-budget_paper-orthogonal_map_matrix_exp",
        ),
        (["budget=quick", "directions=[1-0]", "normalize=none"], "mas-hidden-count-k16-s0-1-0-normalize_none"),
        (["budget=quick", "directions=within", "site=embed", "swap=full"], "mas-embed-full-k16-s0-within"),
        (["method=stitch"], "stitch-hidden-count-kfull-s0"),
        (["method=stitch", "k=4"], "stitch-hidden-count-k4-s0"),
        (["method=unimas"], "unimas-hidden-count-k16-s0"),
        (["align_fn=gram_schmidt"], "mas-hidden-count-k16-s0-align_fn_gram_schmidt"),
        (["causal_model=up_up", "swap=resp_count"], "mas-hidden-resp_count-k16-s0-cm_up_up"),
        (["swap=[count,phase]", "null_block=true"], "mas-hidden-count+phase-k16-s0-null"),
        (["align_fn=linear", "orthogonal_map=matrix_exp"], "mas-hidden-count-k16-s0-align_fn_linear"),
    ],
)
def test_run_directories_are_named_by_their_settings(overrides, name):
    plan = plan_alignment(compose_config("align", ["a=gru", "b=lstm:1", "paths.root=out", *overrides]))
    assert plan.run_dir.as_posix() == f"out/alignments/{name}/count.gru.0+count.lstm.1"


def test_stitching_and_unimas_train_their_fixed_directions(tmp_path):
    stitch = run_align(tmp_path, "a=gru", "b=lstm", "method=stitch", "k=full")
    val = stitch.rows[stitch.rows.split == "val"]
    assert list(zip(val.src, val.trg)) == [("count/gru/0", "count/lstm/0")]
    assert set(val.method) == {"stitch"} and set(val.k) == {16}  # full width of the width-16 models
    unimas = run_align(tmp_path, "a=gru", "b=lstm", "method=unimas")
    val = unimas.rows[unimas.rows.split == "val"]
    assert list(zip(val.src, val.trg)) == [("count/gru/0", "count/lstm/0"), ("count/lstm/0", "count/lstm/0")]
    assert set(val.method) == {"unimas"} and set(val.k) == {4}


def test_several_variables_and_the_null_block_are_reported_per_variable(tmp_path):
    result = run_align(tmp_path, "a=gru", "b=lstm", "swap=[count,phase]", "null_block=true")
    val = result.rows[result.rows.split == "val"]
    assert sorted(val.groupby("variable").size().items()) == [("count", 4), ("null_block", 4), ("phase", 4)]
    curve = pd.read_csv(result.run_dir / "curve.csv")
    assert set(curve.variable) == {"count", "phase", "null_block"}
    assert run_align(tmp_path, "a=gru", "b=lstm", "swap=[count,phase]", "null_block=true").reused


def test_cross_task_alignment_maps_count_onto_cumu_val(tmp_path):
    result = run_align(tmp_path, "a=gru", "b=arithmetic/gru", "swap_by_task.arithmetic=cumu_val")
    assert "mas-hidden-count-k4-s0-map_arithmetic_cumu_val" in str(result.run_dir)
    val = result.rows[result.rows.split == "val"]
    assert set(val.variable) == {"count~cumu_val"} and len(val) == 4


def test_causal_model_hypotheses(tmp_path):
    up_up = run_align(tmp_path, "a=gru", "causal_model=up_up", "swap=resp_count")
    assert set(up_up.rows.causal_model) == {"up_up"} and set(up_up.rows.variable) == {"resp_count"}
    context = run_align(tmp_path, "a=lstm", "causal_model=context", "swap=full", "k=full")
    assert set(context.rows.causal_model) == {"context"} and set(context.rows.k) == {16}
    items = pd.read_csv(context.run_dir / "items.csv")  # no variables: nothing to read before or after
    assert len(items) > 0 and items[["read", "before", "after"]].isna().all().all()
    default = run_align(tmp_path, "a=gru")
    assert set(default.rows.causal_model) == {"task default"}


def test_context_counterfactuals_keep_the_base_behaviour():
    from mas_cli.tasks import CountingTask, make_counterfactuals

    task = CountingTask()
    cf = make_counterfactuals(task, 50, "full", np.random.default_rng(0), causal_model="context", same_phase=True)
    for t, b in zip(cf.tokens, cf.base):  # nothing is stored to swap: the base sequence, unchanged
        assert np.array_equal(t[t != 0], b[b != 0])
    phase = task.phase_of
    for i in range(50):
        assert phase(cf.base[i : i + 1])[0, cf.tau[i]] == phase(cf.source[i : i + 1])[0, cf.sigma[i]]


@pytest.mark.parametrize("align_fn", ["gram_schmidt", "linear"])
def test_other_alignment_functions_fit_and_save(tmp_path, align_fn):
    result = run_align(tmp_path, "a=gru", "b=lstm", f"align_fn={align_fn}")
    assert set(result.rows.align_fn) == {align_fn} and result.rows.iia.between(0, 1).all()
    payload = read_alignment(result.run_dir / "alignment.pt")
    names = set(payload["functions"])
    assert any(n.endswith("basis" if align_fn == "gram_schmidt" else "weight") for n in names), names
    assert run_align(tmp_path, "a=gru", "b=lstm", f"align_fn={align_fn}").reused


def test_the_run_task_is_the_default_task_of_specs():
    plan = plan_alignment(compose_config("align", ["task=count_mod", "a=gru", "b=count/lstm", "paths.root=out"]))
    assert [s.label for s in plan.specs] == ["count_mod/gru/0", "count/lstm/0"]
