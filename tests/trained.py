"""Tiny models trained to their criterion once per test session, and alignments fitted on them,
so the default suite checks numbers on real trained networks (seconds, not minutes).

The models are width 32, on Multi-Object counting up to 8 (count 4 held out). Set
MAS_TRAINED_CACHE to a folder to keep the trained models between sessions
(scripts/mutants.py does, so each mutant run only fits and scores).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import mas_cli as mas

TRAIN = [
    "arch.width=32",
    "task.max_count=8",
    "task.held_out=[4]",
    "budget.lr=3e-3",
    "budget.batch_size=64",
    "budget.warmup_steps=20",
    "budget.val_size=200",
    "budget.heldout_size=100",
]
ALIGN = [
    "budget.align.train_size=512",
    "budget.align.val_size=200",
    "budget.align.max_steps=100",
    "budget.align.val_every=50",
    "budget.align.batch_size=64",
    "budget.align.lr=5e-3",
]
ARCHS = ("gru", "lstm", "transformer")

# name -> (models, settings): one fit per case the oracle covers
FITS = {
    "mas": (["gru", "lstm"], {"k": 8}),
    "das_transformer": (["transformer"], {"k": 8}),
    "stitch": (["gru", "lstm"], {"method": "stitch"}),  # full width: zero mask or not, the same map
    "stitch_k4": (["lstm", "gru"], {"method": "stitch", "k": 4}),  # where the zero mask matters
    "blocks": (["gru", "lstm"], {"k": 4, "swap": ["count", "phase"], "null_block": True}),
    "embed": (["gru", "transformer"], {"k": 8, "site": "embed"}),
}


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory) -> Path:
    """A model store with a GRU, an LSTM and a transformer, each trained to its criterion."""
    root = tmp_path_factory.mktemp("trained")
    cache = os.environ.get("MAS_TRAINED_CACHE")
    if cache and (Path(cache) / "models").is_dir():
        shutil.copytree(Path(cache) / "models", root / "models", symlinks=True)  # entries are links
        return root
    for arch in ARCHS:
        result = mas.train(arch=arch, root=root, overrides=TRAIN)
        assert result.metrics["trained_to_criterion"], (arch, result.metrics)
    if cache:
        shutil.copytree(root / "models", Path(cache) / "models", symlinks=True, dirs_exist_ok=True)
    return root


@pytest.fixture(scope="session")
def fits(trained_root) -> dict:
    """Every fit of FITS on the trained models: name -> AlignResult."""
    return {
        name: mas.align(models, root=trained_root, overrides=ALIGN, **settings)
        for name, (models, settings) in FITS.items()
    }
