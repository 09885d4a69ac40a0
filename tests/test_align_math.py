"""Exact tests of the intervention math: alignment functions, the swap, the fast paths against the
generic hook path through the whole step (data, interchange, continuation, both alignment
functions' gradients), and a planted code that MAS/DAS must recover."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mas_cli.alignment.directions import build_directions
from mas_cli.alignment.fit import Aligner
from mas_cli.alignment.interchange import stitch, swap
from mas_cli.alignment.items import build_direction
from mas_cli.alignment.maps import AlignedRows, OrthogonalAlignment
from mas_cli.alignment.settings import ORTHOGONAL_MAPS
from mas_cli.alignment.swaps import Block
from mas_cli.alignment.targets import Part
from mas_cli.tasks import make_counterfactuals, targets_of
from tests.helpers import TASK, align_cfg, predictions, random_model, scored_in_order

pytestmark = pytest.mark.fast  # pure computation: the tier a developer runs while working


def interchange(h_target, h_source, a_target, a_source, k: int, keep_target: bool = True):
    """The formula as written, through the full alignment space: A_t⁻¹((1 − M_k) ⊙ A_t(h_t) +
    M_k ⊙ A_s(h_s)); keep_target=False is stitching's zero mask (the first term dropped)."""
    z_target, z_source = a_target(h_target), a_source(h_source)
    mask = torch.zeros(z_target.shape[-1], dtype=z_target.dtype)
    mask[:k] = 1
    z_source = torch.nn.functional.pad(z_source, (0, max(z_target.shape[-1] - z_source.shape[-1], 0)))
    kept = (1 - mask) * z_target if keep_target else torch.zeros_like(z_target)
    return a_target.inverse(kept + mask * z_source[..., : z_target.shape[-1]])


@pytest.mark.parametrize("orthogonal_map", ORTHOGONAL_MAPS)
def test_inverse_undoes_the_alignment_and_training_keeps_it_orthogonal(orthogonal_map):
    a = OrthogonalAlignment(12, orthogonal_map, torch.Generator().manual_seed(0))
    h = torch.randn(5, 12)
    torch.testing.assert_close(a.inverse(a(h)), h, atol=1e-5, rtol=0)
    optimizer = torch.optim.Adam(a.parameters(), lr=0.1)
    for _ in range(20):
        loss = (a(torch.randn(8, 12))[:, :3] ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    q = a.matrix().detach()
    assert not torch.allclose(q, OrthogonalAlignment(12, orthogonal_map, torch.Generator().manual_seed(0)).matrix())
    torch.testing.assert_close(q @ q.T, torch.eye(12), atol=1e-5, rtol=0)


def test_normalization_leaves_a_within_model_swap_unchanged():
    a = OrthogonalAlignment(8, "cayley", generator=torch.Generator().manual_seed(2))
    h_t, h_s = torch.randn(5, 8), torch.randn(5, 8)
    plain = swap(h_t, h_s, a.aligned(3), a.aligned(3))
    a.fit_normalization(5 * torch.randn(100, 8) - 2, "rms")
    assert float(a.scale) > 1
    torch.testing.assert_close(swap(h_t, h_s, a.aligned(3), a.aligned(3)), plain, atol=1e-5, rtol=0)


@pytest.mark.parametrize("widths", [(8, 8), (6, 10), (10, 6)])
def test_swap_equals_the_formula_through_the_full_alignment_space(widths):
    d_t, d_s = widths
    generator = torch.Generator().manual_seed(1)
    a_t, a_s = (OrthogonalAlignment(d, "cayley", generator=generator) for d in (d_t, d_s))
    h_t, h_s = torch.randn(7, d_t), torch.randn(7, d_s)
    k = 3
    a_t.fit_normalization(3 * torch.randn(50, d_t) + 1, "rms")  # non-trivial μ and s
    fast = swap(h_t, h_s, a_t.aligned(k), a_s.aligned(k))
    torch.testing.assert_close(fast, interchange(h_t, h_s, a_t, a_s, k), atol=1e-5, rtol=0)
    # the aligned coordinates now hold the source's, the rest are the target's own
    torch.testing.assert_close(a_t(fast)[:, :k], a_s(h_s)[:, :k], atol=1e-5, rtol=0)
    torch.testing.assert_close(a_t(fast)[:, k:], a_t(h_t)[:, k:], atol=1e-5, rtol=0)


@pytest.mark.parametrize("widths", [(8, 8), (6, 10), (10, 6)])
def test_stitching_discards_the_target_and_at_full_width_is_the_composed_map(widths):
    d_t, d_s = widths
    generator = torch.Generator().manual_seed(4)
    a_t, a_s = (OrthogonalAlignment(d, "cayley", generator=generator) for d in (d_t, d_s))
    a_t.fit_normalization(2 * torch.randn(50, d_t) - 1, "rms")
    a_s.fit_normalization(3 * torch.randn(50, d_s) + 2, "rms")
    h_t, h_s = torch.randn(7, d_t), torch.randn(7, d_s)
    for k in (2, min(widths)):
        stitched = stitch(h_t, h_s, a_t.aligned(k), a_s.aligned(k))
        formula = interchange(h_t, h_s, a_t, a_s, k, keep_target=False)
        torch.testing.assert_close(stitched, formula, atol=1e-5, rtol=0)
        other_target = stitch(torch.randn(7, d_t), h_s, a_t.aligned(k), a_s.aligned(k))
        torch.testing.assert_close(other_target, stitched)  # nothing of the target's own vector is left
        torch.testing.assert_close(a_t(stitched)[:, k:], torch.zeros(7, d_t - k), atol=1e-5, rtol=0)
    if d_t == d_s:  # full width: h_t' = A_t⁻¹(A_s(h_s))
        torch.testing.assert_close(stitched, a_t.inverse(a_s(h_s)), atol=1e-5, rtol=0)


def _direction(source, target, site="hidden", n=48, seed=0):
    return build_direction(source, target, site, "count", n, np.random.default_rng(seed), "cpu")


FAST_PATH_CASES = [  # transformers with one layer above the site (fast path) and two (full re-run)
    (("gru", "gru"), 2),
    (("lstm", "gru"), 2),
    (("gru", "lstm"), 2),
    (("gru", "transformer"), 2),
    (("transformer", "transformer"), 2),
    (("gru", "transformer"), 3),
    (("transformer", "transformer"), 3),
]


def fast_and_reference(pair, layers: int, functions: list[OrthogonalAlignment]):
    """One direction's scored logits through the fast paths (with their labels) and through the
    generic hook path (every activation read and every continuation run by hooks) at the same
    predictions, with the alignment functions (source, target) at k 5; and its counterfactuals."""
    found = []
    for fast in (True, False):
        source = random_model(pair[0], seed=1, layers=layers, fast=fast)
        target = random_model(pair[1], seed=2, layers=layers, fast=fast)
        data = build_direction(source, target, "hidden", "count", 48, np.random.default_rng(4), "cpu")
        rows_s, rows_t = (f.aligned(5) for f in functions)  # each path its own graph
        found.append(scored_in_order(target, source, data.take(np.arange(48)), rows_t, rows_s, "hidden"))
    cf = make_counterfactuals(TASK, 48, "count", np.random.default_rng(4))
    (fast, labels), (slow, _) = found
    return fast, labels, slow, cf


@pytest.mark.parametrize(("pair", "layers"), FAST_PATH_CASES)
def test_fast_path_matches_the_straightforward_per_step_path(pair, layers):
    generator = torch.Generator().manual_seed(3)
    functions = [OrthogonalAlignment(16, "cayley", generator=generator) for _ in range(2)]  # source, target
    fast, labels, slow, cf = fast_and_reference(pair, layers, functions)
    torch.testing.assert_close(fast, slow, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(labels, torch.from_numpy(targets_of(cf.tokens))[torch.from_numpy(cf.label_mask)])


@pytest.mark.parametrize(("pair", "layers"), FAST_PATH_CASES)
def test_fast_path_gradients_match_the_straightforward_per_step_path(pair, layers):
    """What training follows: the gradient of the scored logits with respect to both alignment
    functions' parameters, through the fast path and through the per-step reference."""
    generator = torch.Generator().manual_seed(3)
    functions = [OrthogonalAlignment(16, "cayley", generator=generator) for _ in range(2)]  # source, target
    fast, _, slow, _ = fast_and_reference(pair, layers, functions)
    weights = torch.randn(*fast.shape, generator=generator)

    def gradients(logits):
        return torch.autograd.grad((logits * weights).sum(), [p for f in functions for p in f.parameters()])

    for got, expected in zip(gradients(fast), gradients(slow)):
        assert expected.abs().max() > 1e-3  # the loss does reach this parameter
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("site", ["hidden", "embed"])
@pytest.mark.parametrize("arch", ["gru", "lstm", "transformer"])
def test_directions_run_together_give_what_each_gives_alone(arch, site):
    target, sources = random_model(arch, seed=1), [random_model("gru", seed=2), random_model("lstm", seed=3)]
    generator = torch.Generator().manual_seed(0)
    rows_t = OrthogonalAlignment(16, "cayley", generator=generator).aligned(4)
    rows = [OrthogonalAlignment(16, "cayley", generator=generator).aligned(4) for _ in sources]
    batches = [_direction(s, target, site, seed=i).take(np.arange(10 + 20 * i)) for i, s in enumerate(sources)]
    parts = [Part(b, s.at(site), r) for b, s, r in zip(batches, sources, rows)]
    together = predictions(target, rows_t, parts, site)
    for i, part in enumerate(parts):
        alone = predictions(target, rows_t, [part], site)
        mine = together.part == i
        key_together = torch.argsort(together.item[mine] * 10_000 + together.column[mine])
        key_alone = torch.argsort(alone.item * 10_000 + alone.column)
        torch.testing.assert_close(together.logits[mine][key_together], alone.logits[key_alone], atol=1e-5, rtol=1e-5)
        assert torch.equal(together.labels[mine][key_together], alone.labels[key_alone])


@pytest.mark.parametrize("site", ["hidden", "embed"])
@pytest.mark.parametrize("arch", ["gru", "lstm", "transformer"])
def test_k_zero_leaves_the_target_as_if_unintervened(arch, site):
    model = random_model(arch)
    data = _direction(random_model("gru", seed=5), model, site)
    rows = AlignedRows(torch.zeros(0, 16), torch.zeros(16), torch.ones(()))
    logits, _ = scored_in_order(model, random_model("gru", seed=5), data.take(np.arange(48)), rows, rows, site)
    cf = make_counterfactuals(TASK, 48, "count", np.random.default_rng(0), same_position=site == "embed")
    plain = model.model(torch.from_numpy(cf.tokens))[torch.from_numpy(cf.label_mask)]
    torch.testing.assert_close(logits, plain, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ["gru", "transformer"])
def test_full_width_within_model_iia_does_not_depend_on_the_alignment(arch):
    model = random_model(arch)
    scores = []
    for seed in (0, 1):
        cfg = align_cfg(k=16, seed=seed)
        directions = build_directions([model], [(0, 0)], "hidden", [Block("count", 0, 16)], cfg.budget.align, 0, "cpu")
        aligner = Aligner(cfg, [model], directions, "cpu")
        scores.append(aligner.evaluate(directions[0], directions[0].val))
    assert scores[0].iia == scores[1].iia and scores[0].tok_acc == scores[1].tok_acc
    assert scores[0].loss == pytest.approx(scores[1].loss, abs=1e-4)


@pytest.mark.parametrize("arch", ["gru", "lstm", "transformer"])
def test_embed_site_matches_running_the_model_on_swapped_embeddings(arch):
    source, target = random_model("lstm", seed=3), random_model(arch, seed=4)
    generator = torch.Generator().manual_seed(5)
    rows_s, rows_t = (OrthogonalAlignment(16, "cayley", generator=generator).aligned(6) for _ in range(2))
    data = _direction(source, target, "embed", seed=6)
    fast, labels = scored_in_order(target, source, data.take(np.arange(48)), rows_t, rows_s, "embed")
    cf = make_counterfactuals(TASK, 48, "count", np.random.default_rng(6), same_position=True)
    tokens = torch.from_numpy(cf.tokens)
    sources = torch.from_numpy(cf.source[:, : tokens.shape[1]])
    sources = torch.nn.functional.pad(sources, (0, tokens.shape[1] - sources.shape[1]))
    e_target, e_source = target.model.embed(tokens), source.model.embed(sources)
    up_to_tau = (torch.arange(tokens.shape[1])[None, :] <= torch.from_numpy(cf.tau)[:, None])[..., None]
    swapped = torch.where(up_to_tau, swap(e_target, e_source, rows_t, rows_s), e_target)
    mask = torch.from_numpy(cf.label_mask)
    plain = target.model.readout(target.model.features_from_embeddings(swapped))  # the model run on them
    torch.testing.assert_close(fast, plain[mask], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(labels, torch.from_numpy(targets_of(cf.tokens))[mask])


def test_gram_schmidt_is_the_classical_procedure_and_stays_orthonormal_under_training():
    from mas_cli.alignment.maps import GramSchmidtAlignment, gram_schmidt

    vectors = torch.randn(4, 9, dtype=torch.float64)
    expected = []
    for v in vectors:  # the textbook loop
        for u in expected:
            v = v - (v @ u) * u
        expected.append(v / v.norm())
    torch.testing.assert_close(gram_schmidt(vectors), torch.stack(expected))
    a = GramSchmidtAlignment(9, 4, torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(a.parameters(), lr=0.3)
    for _ in range(20):
        loss = (a.aligned(4).coordinates(torch.randn(8, 9)) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    rows = a.aligned(4).rows.detach()
    torch.testing.assert_close(rows @ rows.T, torch.eye(4), atol=1e-5, rtol=0)


def test_gram_schmidt_and_orthogonal_swaps_agree_on_the_same_subspace():
    from mas_cli.alignment.maps import GramSchmidtAlignment

    generator = torch.Generator().manual_seed(3)
    k = 3
    orthogonal_t, orthogonal_s = (
        OrthogonalAlignment(10, "cayley", generator=generator),
        OrthogonalAlignment(7, "cayley", generator=generator),
    )
    gs_t, gs_s = GramSchmidtAlignment(10, k), GramSchmidtAlignment(7, k)
    with torch.no_grad():  # another basis of the same k-dim subspaces: mixed, neither orthogonal nor normalised
        mix = torch.randn(k, k) + 3 * torch.eye(k)
        gs_t.basis.copy_(mix @ orthogonal_t.matrix()[:k])
        gs_s.basis.copy_(orthogonal_s.matrix()[:k])  # Gram–Schmidt leaves orthonormal rows as they are
    h_t, h_s = torch.randn(6, 10), torch.randn(6, 7)
    # the target's swap is a projection: any orthonormal basis of the subspace gives the same h'
    fast_o = swap(h_t, h_t, orthogonal_t.aligned(k), orthogonal_t.aligned(k))
    torch.testing.assert_close(swap(h_t, h_t, gs_t.aligned(k), gs_t.aligned(k)), fast_o, atol=1e-5, rtol=0)
    within_o = swap(h_t, h_t[[1, 2, 3, 4, 5, 0]], orthogonal_t.aligned(k), orthogonal_t.aligned(k))
    within_g = swap(h_t, h_t[[1, 2, 3, 4, 5, 0]], gs_t.aligned(k), gs_t.aligned(k))
    torch.testing.assert_close(within_g, within_o, atol=1e-5, rtol=0)
    # across models the bases must agree coordinate by coordinate: give the GS target Q_t[:k] itself
    with torch.no_grad():
        gs_t.basis.copy_(orthogonal_t.matrix()[:k])
    cross_o = swap(h_t, h_s, orthogonal_t.aligned(k), orthogonal_s.aligned(k))
    cross_g = swap(h_t, h_s, gs_t.aligned(k), gs_s.aligned(k))
    torch.testing.assert_close(gs_s.aligned(k).rows, orthogonal_s.matrix()[:k], atol=1e-5, rtol=0)
    torch.testing.assert_close(cross_g, cross_o, atol=1e-5, rtol=0)


@pytest.mark.parametrize("widths", [(8, 8), (6, 10), (10, 6)])
def test_linear_swap_equals_the_formula_through_its_inverse(widths):
    from mas_cli.alignment.maps import LinearAlignment

    d_t, d_s = widths
    generator = torch.Generator().manual_seed(5)
    a_t, a_s = LinearAlignment(d_t, generator), LinearAlignment(d_s, generator)
    with torch.no_grad():  # make them non-orthogonal (and keep them well conditioned)
        a_t.weight.mul_(torch.linspace(0.5, 2.0, d_t)[:, None]).add_(0.1 * torch.randn(d_t, d_t, generator=generator))
        a_s.weight.mul_(torch.linspace(0.5, 2.0, d_s)[:, None]).add_(0.1 * torch.randn(d_s, d_s, generator=generator))
    a_t.fit_normalization(2 * torch.randn(40, d_t, generator=generator) + 1, "rms")
    h_t, h_s = torch.randn(5, d_t, generator=generator), torch.randn(5, d_s, generator=generator)
    torch.testing.assert_close(a_t.inverse(a_t(h_t)), h_t, atol=1e-4, rtol=0)
    for keep_target in (True, False):
        fast = (swap if keep_target else stitch)(h_t, h_s, a_t.aligned(3), a_s.aligned(3))
        torch.testing.assert_close(fast, interchange(h_t, h_s, a_t, a_s, 3, keep_target), atol=1e-4, rtol=0)


def test_each_variable_block_swaps_only_its_own_coordinates():
    generator = torch.Generator().manual_seed(6)
    a_t, a_s = (OrthogonalAlignment(d, "cayley", generator=generator) for d in (12, 9))
    a_t.fit_normalization(torch.randn(40, 12) + 2, "rms")
    h_t, h_s = torch.randn(5, 12), torch.randn(5, 9)
    rows_t, rows_s = a_t.aligned(9), a_s.aligned(9)
    for first, stop in ((0, 3), (3, 6), (6, 9)):  # count block, phase block, null block up to the smaller width
        out = swap(h_t, h_s, rows_t.block(first, stop), rows_s.block(first, stop))
        z_out, z_t, z_s = a_t(out), a_t(h_t), a_s(h_s)
        torch.testing.assert_close(z_out[:, first:stop], z_s[:, first:stop], atol=1e-5, rtol=0)
        outside = torch.ones(12, dtype=torch.bool)
        outside[first:stop] = False
        torch.testing.assert_close(z_out[:, outside], z_t[:, outside], atol=1e-5, rtol=0)


def test_null_block_counterfactuals_are_the_base_sequences():
    cf = make_counterfactuals(TASK, 40, "null_block", np.random.default_rng(3))
    for t, b in zip(cf.tokens, cf.base):
        assert np.array_equal(t[t != 0], b[b != 0])
