"""Counterfactual items from a file (`data=items`, mas_cli/data/items_file.py): the built-in
counting counterfactuals, exported and fitted from the file, give the built-in source's numbers
to the last digit; each form of label means what docs/DATA.md says; every bad row is refused on a
line of its own, before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import mas_cli as mas
from mas_cli.data.items_file import counterfactuals, read_items
from mas_cli.errors import ConfigError
from mas_cli.tasks import CountingTask
from tests.conftest import run_cli
from tests.planted import PlantedCounter

TASK = CountingTask()
# 200 counterfactuals: 150 to fit, 50 to validate; a fit short enough to stop half way
SIZES = ["budget.align.train_size=150", "budget.align.val_size=50", "budget.align.max_steps=20"]
SIZES += ["budget.align.lr=0.02", "budget.align.batch_size=64"]  # IIA 0.28 here, from 0.06 unswapped
SETTINGS = dict(method="das", k=1, orthogonal_map="matrix_exp", budget="smoke")
SCORES = ["src", "trg", "variable", "split", "iia", "iia_lo", "iia_hi", "iia_none", "tok_acc", "loss", "n", "steps"]


def test_exported_counterfactuals_fit_exactly_as_the_built_in_source(tmp_path):
    path = mas.export_items(tmp_path / "count.jsonl", root=tmp_path, overrides=SIZES, **SETTINGS)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 200 and [r["split"] for r in rows].count("val") == 50
    planted = mas.wrap(PlantedCounter(TASK, seed=0), site="cell", name="planted")
    built_in = mas.align([planted], root=tmp_path, overrides=SIZES, **SETTINGS)
    from_file = mas.align([planted], root=tmp_path, overrides=[*SIZES, "data=items", f"data.path={path}"], **SETTINGS)
    assert built_in.run_dir != from_file.run_dir and "-items_count" in from_file.run_dir.parent.name
    ours, theirs = built_in.iia[SCORES], from_file.iia[SCORES]
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    assert (ours.iia > ours.iia_none).all() and (ours.iia < 1).all()  # numbers a wrong item would move
    items = [pd.read_csv(r.run_dir / "items.csv") for r in (built_in, from_file)]
    pd.testing.assert_frame_equal(*items, check_exact=True)  # values before and after the swap, per item
    assert set(from_file.iia.data_path) == {f"count.jsonl@{_sha(path)[:16]}"}


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(tmp_path, rows, name="items.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_each_form_of_label_is_the_counterfactual_it_says(tmp_path):
    base, source = [1, 5, 5, 3, 4, 4, 2], [1, 6, 6, 6, 3, 4, 4, 4, 2]
    rows = [
        {"base": base, "source": source, "tau": 2, "sigma": 3, "label": 3},
        {"base": base, "source": source, "tau": 2, "sigma": 3, "label": [3, 4, 4, 4, 2]},
        {"base": base, "source": source, "tau": 2, "tokens": [1, 5, 5, 7, 3, 2], "scored": [4, 3]},
    ]
    cf = counterfactuals(read_items(_write(tmp_path, rows)), "count")
    pad = 0
    assert cf.tokens.tolist() == [
        [1, 5, 5, 3, pad, pad, pad, pad],
        [1, 5, 5, 3, 4, 4, 4, 2],
        [1, 5, 5, 7, 3, 2, pad, pad],
    ]
    assert [np.flatnonzero(m).tolist() for m in cf.label_mask] == [[2], [2, 3, 4, 5, 6], [3, 4]]
    assert cf.tau.tolist() == [2, 2, 2] and cf.sigma.tolist() == [3, 3, 2]


BAD = [
    "{not json",
    {"base": [1, 5, 2], "source": [1, 6, 2], "tau": 7, "label": 3},
    {"base": [1, 5, 2], "source": [1, 6, 2], "tau": 1},
    {"base": [1, 5, 2], "source": [1, 6, 2], "tau": 1, "label": 3, "tokens": [1, 5, 3]},
    {"base": [1, 5, 2], "source": [1, -6, 2], "tau": 1, "label": 3},
    {"base": [1, 5, 2], "source": [1, 6, 2], "tau": 1, "tokens": [1, 6, 3], "scored": [1]},
    {"base": [1, 5, 2], "source": [1, 6, 2], "tau": 1, "label": 3, "split": "test"},
]


def test_every_bad_row_is_named_with_its_field(tmp_path):
    good = {"base": [1, 5, 2], "source": [1, 6, 2], "tau": 1, "label": 3}
    path = _write(tmp_path, [good, *BAD])
    with pytest.raises(ConfigError) as found:
        read_items(path)
    lines = str(found.value).splitlines()
    assert [line.split(":")[0].rsplit(" ", 1)[1] for line in lines] == [str(n) for n in range(2, 9)]
    said = ["not JSON", "tau must be a position", "exactly one of label", "exactly one of label", "source must be"]
    said += ["tokens must equal base", "split must be train or val"]
    for line, words in zip(lines, said):
        assert words in line, line


def test_a_bad_items_file_is_refused_by_the_command_before_anything_is_written(tmp_path):
    root = tmp_path / "root"
    path = _write(tmp_path, [{"base": [1, 5, 2], "source": [1, 6, 2], "tau": 1, "label": 99}, BAD[1]])
    done = run_cli("align", "a=gru", "b=lstm", "data=items", f"data.path={path}", f"paths.root={root}", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {path} row 2: tau must be a position in its sequence (0 to 2), got 7"
    ]
    assert not root.exists()
    ok = _write(tmp_path, [{"base": [1, 5, 2], "source": [1, 6, 2], "tau": 1, "label": 99}], "vocab.jsonl")
    planted = mas.wrap(PlantedCounter(TASK, seed=0), site="cell", name="planted")
    with pytest.raises(ConfigError, match=r"vocab.jsonl row 1: tokens holds token id 99, outside count/planted/0's"):
        mas.align([planted], root=root, overrides=["data=items", f"data.path={ok}"], **SETTINGS)
    for missing in (["data=items"], ["data=items", f"data.path={tmp_path}/none.jsonl"]):
        done = run_cli("align", "a=gru", "b=lstm", *missing, f"paths.root={root}", cwd=tmp_path)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "data.path" in done.stderr
    assert not root.exists()
