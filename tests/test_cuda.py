"""`device=auto` on a CUDA machine: training resumes to the same model, the alignment fast path
(the models' own cuDNN kernels, not the CPU suffix kernel) equals the generic hook path run on
the CPU. Skipped where no CUDA device is visible (CI, laptops); run with `pytest tests/test_cuda.py`
on a GPU machine (docs/BENCHMARKS.md records when it last ran there)."""

from __future__ import annotations

import copy
from dataclasses import fields

import numpy as np
import pytest
import torch

from mas_cli.alignment.items import build_direction
from mas_cli.alignment.maps import AlignedRows, OrthogonalAlignment
from mas_cli.continuation.recurrent import suffix_kernel_runs
from mas_cli.training import resolve_device
from tests.helpers import interrupted_and_resumed, random_model, scored_in_order

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def full_precision():
    """TF32 would make the GPU's matmuls differ from the CPU's by ~1e-3: compare in true fp32."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_auto_picks_the_gpu():
    assert resolve_device("auto").type == "cuda"


def test_interrupted_training_on_the_gpu_resumes_to_the_same_model(small_train_cfg, tmp_path, monkeypatch):
    a, b = interrupted_and_resumed(small_train_cfg, tmp_path, monkeypatch, "device=auto")
    for name in a:  # cuDNN's RNN backward may sum in another order: equal up to rounding
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pair", [("gru", "lstm"), ("lstm", "gru"), ("gru", "transformer")])
def test_the_fast_path_on_the_gpu_equals_the_generic_path_on_the_cpu(pair):
    source, target = random_model(pair[0], seed=1, fast=False), random_model(pair[1], seed=2, fast=False)
    generator = torch.Generator().manual_seed(3)
    rows_s = OrthogonalAlignment(16, "cayley", generator=generator).aligned(5)
    rows_t = OrthogonalAlignment(16, "cayley", generator=generator).aligned(5)
    data = build_direction(source, target, "hidden", "count", 48, np.random.default_rng(4), "cpu")
    slow, _ = scored_in_order(target, source, data.take(np.arange(48)), rows_t, rows_s, "hidden")
    source, target = random_model(pair[0], seed=1), random_model(pair[1], seed=2)

    gpu = [copy.deepcopy(m) for m in (source, target)]
    for m in gpu:
        m.model.cuda()
    assert gpu[1].at("hidden").fast  # a fast path runs ...
    if pair[1] != "transformer":  # ... and for an RNN it is the models' own cuDNN kernel, not the CPU kernel
        assert not suffix_kernel_runs(gpu[1].model, torch.zeros(1, device="cuda"))
    data = build_direction(gpu[0], gpu[1], "hidden", "count", 48, np.random.default_rng(4), "cuda")
    on_gpu = [
        AlignedRows(*(t if t is None else t.cuda() for t in (getattr(r, f.name) for f in fields(r))))
        for r in (rows_t, rows_s)
    ]
    fast, _ = scored_in_order(gpu[1], gpu[0], data.take(np.arange(48)), *on_gpu, "hidden")
    torch.testing.assert_close(fast.cpu(), slow, atol=1e-4, rtol=1e-4)
