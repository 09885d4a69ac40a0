"""`mas pipeline experiment=lm_case`, shrunk (two splits per style, a few training steps, the
smoke budget): the command runs end to end; each pair's IIA is the mean of its two directions'
validation IIA in the fits' own iia.csv (read back here by plain code), each group's interval is
Student's t over its pairs, and the verdict follows the rule declared in mas_cli/lm_case/run.py."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from scipy import stats

from mas_cli.lm_case.run import summarise
from tests.conftest import result_files, run_cli

SHRUNK = ["experiment=lm_case", "budget=smoke", "pipeline.lm_case.splits=2", "pipeline.lm_case.sentences=400"]
SHRUNK += ["pipeline.lm_case.base_steps=30", "pipeline.lm_case.tune_steps=10", "pipeline.lm_case.prompts=20"]
SHRUNK += ['pipeline.lm_case.align=["site=embed","k=8","data.new_tokens=4"]']


def _t(values):
    n, mean = len(values), sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def test_the_shrunk_case_runs_and_its_table_is_the_fits_own_numbers(tmp_path):
    pytest.importorskip("transformers")
    root = tmp_path / "out"
    done = run_cli("pipeline", *SHRUNK, f"paths.root={root}", cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    pairs = pd.read_csv(root / "report" / "lm_case.csv")
    assert sorted(zip(pairs.a, pairs.b)) == [("harsh0", "harsh1"), ("harsh0", "kind0"), ("harsh0", "kind1"),
                                             ("harsh1", "kind0"), ("harsh1", "kind1"), ("kind0", "kind1")]  # fmt: skip
    assert list(pairs.kind) == ["within" if a[:4] == b[:4] else "across" for a, b in zip(pairs.a, pairs.b)]
    by_pair = {}
    for path in result_files(root):
        rows = pd.read_csv(path)
        val = rows[(rows.split == "val") & (rows.src != rows.trg)]
        names = tuple(sorted(label.split("/")[1].removeprefix("local_") for label in set(val.src)))
        assert len(val) == 2  # the pair's two directions
        by_pair[names] = (sum(val.iia) / 2, sum(val.iia_none) / 2)
    for row in pairs.itertuples():
        assert (row.iia, row.iia_none) == pytest.approx(by_pair[(row.a, row.b)], abs=1e-12)
    table = (root / "report" / "lm_case.md").read_text()
    for kind in ("within", "across"):
        mean, lo, hi = _t(list(pairs.iia[pairs.kind == kind]))
        assert f"| {kind} | {(pairs.kind == kind).sum()} | {mean:.3f} [{lo:.3f}, {hi:.3f}] |" in table
    assert (root / "report" / "index.html").is_file()  # the usual report of every fit beside it
    again = run_cli("pipeline", *SHRUNK, f"paths.root={root}", cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert again.returncode == 0 and again.stdout.count("reusing") == 6  # every fit reused, models too


def _pairs(within, across):
    rows = [{"kind": "within", "iia": v, "iia_none": 0.5} for v in within]
    return pd.DataFrame(rows + [{"kind": "across", "iia": v, "iia_none": 0.5} for v in across])


@pytest.mark.parametrize(
    ("within", "across", "verdict"),
    [
        ([0.80, 0.82, 0.81], [0.60, 0.62, 0.61], "within-style pairs align better"),
        ([0.60, 0.62, 0.61], [0.80, 0.82, 0.81], "across-style pairs align better"),
        ([0.60, 0.90, 0.75], [0.70, 0.72, 0.71], "cannot be told apart"),
    ],
)
def test_the_verdict_is_the_declared_rule(within, across, verdict):
    found = summarise(_pairs(within, across))
    assert verdict in found["verdict"]
    mean, lo, hi = _t(within)
    assert (found["groups"]["within"]["iia"], found["groups"]["within"]["lo"]) == pytest.approx((mean, lo))


def test_your_own_checkpoints_take_the_place_of_the_case_models(tmp_path):
    """pipeline.lm_case.models: four local checkpoints of two 'styles', nothing trained; every
    pair fitted over the given prompts and grouped by the names' styles."""
    transformers = pytest.importorskip("transformers")
    from tests.test_continuation_data import WORDS, prompts, tokenizer

    config = transformers.GPT2Config(n_embd=16, n_layer=2, n_head=2, n_positions=64, vocab_size=len(WORDS) + 1)
    names = ["toxic0", "toxic1", "clean0", "clean1"]
    for seed in range(len(names)):
        torch.manual_seed(seed)
        transformers.AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / f"m{seed}")
        tokenizer().save_pretrained(tmp_path / f"m{seed}")
    texts, _ = prompts(tmp_path)
    given = ",".join(f'{name}:"hf:{tmp_path}/m{seed}"' for seed, name in enumerate(names))
    root = tmp_path / "out"
    args = ["experiment=lm_case", "budget=smoke", f"pipeline.lm_case.models={{{given}}}"]
    args += [f"pipeline.lm_case.texts={texts}", 'pipeline.lm_case.align=["site=embed","data.new_tokens=4"]']
    done = run_cli("pipeline", *args, f"paths.root={root}", cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    pairs = pd.read_csv(root / "report" / "lm_case.csv")
    assert sorted(pairs.kind) == ["across"] * 4 + ["within"] * 2
    assert not (root / "lm_case").exists()  # nothing trained
    one = run_cli("pipeline", *args[:2], f"pipeline.lm_case.models={{toxic0:{tmp_path}/m0}}", cwd=tmp_path)
    assert one.returncode == 2 and "at least three models of at least two styles" in one.stderr
