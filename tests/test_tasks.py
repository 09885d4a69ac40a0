"""Task generators: property tests against their causal models, plus exact encodings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mas_cli.tasks import ArithmeticTask, CountingTask, targets_of
from mas_cli.tasks.causal import TRANSFORMS, Free
from mas_cli.tasks.counting import CAUSAL_MODELS, VARIANTS
from mas_cli.tasks.vocab import EOS, PAD

pytestmark = pytest.mark.fast  # pure computation: the tier a developer runs while working

COUNTING = st.builds(
    CountingTask,
    variant=st.sampled_from(sorted(VARIANTS)),
    void_p=st.sampled_from([0.0, 0.2, 0.5]),
    transform=st.sampled_from(sorted(TRANSFORMS)),
    min_count=st.integers(1, 4),
    max_count=st.integers(5, 12),
    held_out=st.just((5,)),
)


def emissions_match(model, tokens, length, quantity) -> bool:
    """Teacher-force the causal model over a sequence: each determined next token is the one the
    sequence has, each free one is among the allowed choices, and it ends exactly at EOS."""
    state = model.start(int(quantity))
    for p in range(length - 1):
        emitted = model.emit(state)
        following = int(tokens[p + 1])
        if isinstance(emitted, Free):
            if following not in emitted.choices:
                return False
        elif following != emitted:
            return False
        if following == EOS:
            return p + 2 == length
        state = model.read(state, following)
    return False


@settings(max_examples=60, deadline=None)
@given(
    task=COUNTING,
    seed=st.integers(0, 2**32 - 1),
    causal=st.sampled_from(sorted(set(CAUSAL_MODELS) - {"context"})),
)
def test_counting_sequences_are_what_the_causal_model_emits(task, seed, causal):
    batch = task.sample(40, np.random.default_rng(seed), "all")
    model = task.causal_model(causal)
    for tokens, length, n in zip(batch.tokens, batch.lengths, batch.quantity):
        assert emissions_match(model, tokens, length, n), task.vocab.decode(tokens)


@settings(max_examples=15, deadline=None)
@given(task=COUNTING, seed=st.integers(0, 2**32 - 1))
def test_context_distributed_model_emits_the_same_sequences(task, seed):
    batch = task.sample(10, np.random.default_rng(seed), "all")
    model = task.causal_model("context")
    for tokens, length, n in zip(batch.tokens, batch.lengths, batch.quantity):
        assert emissions_match(model, tokens, length, n)


@settings(max_examples=60, deadline=None)
@given(task=COUNTING, seed=st.integers(0, 2**32 - 1))
def test_counting_structure(task, seed):
    batch = task.sample(50, np.random.default_rng(seed), "train")
    assert not np.isin(batch.quantity, task.held_out).any()
    for tokens, length, n in zip(batch.tokens, batch.lengths, batch.quantity):
        assert tokens[length - 1] == EOS and (tokens[length:] == PAD).all()
        trigger = int(np.flatnonzero(tokens == task.trigger)[0])
        demo = tokens[1:trigger]
        assert np.isin(demo, task.demo).sum() == n  # voids do not count
        assert demo[-1] != task.void  # the demo phase ends on its n-th demo token
        if task.void_p == 0:
            assert (demo != task.void).all()
        assert length - trigger - 2 == TRANSFORMS[task.transform](int(n))


def test_heldout_split_draws_only_heldout_counts():
    task = CountingTask(held_out=(4, 9, 14, 17))
    batch = task.sample(500, np.random.default_rng(0), "heldout")
    assert set(batch.quantity.tolist()) == {4, 9, 14, 17}


def test_exact_encodings():
    multi, single, same = (CountingTask(variant=v) for v in ("multi_object", "single_object", "same_object"))
    assert multi.vocab.names == ("PAD", "BOS", "EOS", "T", "R", "D0", "D1", "D2", "V")
    assert single.vocab.decode(single.sample(1, np.random.default_rng(0)).tokens[0]).startswith("BOS D")
    rng = np.random.default_rng(3)
    batch = same.sample(200, rng, "all")
    two = batch.tokens[batch.quantity == 2][0]
    assert same.vocab.decode(two) == "BOS C C T C C EOS"


def test_void_rate_matches_void_p():
    task = CountingTask(void_p=0.2)
    tokens = task.sample(5000, np.random.default_rng(0)).tokens
    demo_steps = np.isin(tokens, np.append(task.demo, task.void)).sum()
    # Per-step Bernoulli(void_p) until the n-th demo token: E[voids] / E[steps] = void_p.
    rate = (tokens == task.void).sum() / demo_steps
    assert abs(rate - 0.2) < 0.01


def test_response_mask_scores_responses_and_eos_only():
    task = CountingTask()
    tokens = np.array([task.vocab.encode("BOS D2 D0 T R R EOS")])
    mask = task.response_mask(tokens)[0]
    assert mask.tolist() == [False, False, False, True, True, True, False]
    targets = targets_of(tokens)[0][mask]
    assert task.vocab.decode(targets) == "R R EOS"


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), up_to=st.integers(-3, 25), arithmetic=st.booleans())
def test_a_curriculum_cap_draws_only_quantities_up_to_it(seed, up_to, arithmetic):
    task = ArithmeticTask() if arithmetic else CountingTask(held_out=(4, 9))
    drawn = task.sample(300, np.random.default_rng(seed), "train", up_to=up_to)
    allowed = task.counts("train")
    assert np.isin(drawn.quantity, allowed).all()
    assert drawn.quantity.max() <= max(up_to, allowed.min())  # below the range: the smallest only
    if up_to >= allowed.max():
        assert np.array_equal(np.unique(drawn.quantity), allowed)  # a cap past the range changes nothing
    if arithmetic:  # k operations: 3 + 5k tokens, k '=' signs
        assert ((drawn.tokens == task.equals).sum(axis=1) == drawn.quantity).all()


def test_generation_is_seeded():
    task = CountingTask(void_p=0.2)
    a = task.sample(100, np.random.default_rng(7)).tokens
    b = task.sample(100, np.random.default_rng(7)).tokens
    assert np.array_equal(a, b)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), max_ops=st.integers(1, 20))
def test_arithmetic_sequences_are_what_the_causal_model_emits(seed, max_ops):
    task = ArithmeticTask(max_ops=max_ops)
    batch = task.sample(30, np.random.default_rng(seed), "all")
    model = task.causal_model()
    for tokens, length, k in zip(batch.tokens, batch.lengths, batch.quantity):
        assert length == 3 + 5 * k
        assert emissions_match(model, tokens, length, k), task.vocab.decode(tokens)


@pytest.mark.parametrize(
    ("variable", "positions"),
    [
        ("cumu_val", [2, 6, 11]),  # v0 and each result: the running value was just read
        ("remaining_ops", [1, 6, 11]),  # k, then each result (after the '=' that counted it down)
        ("op", [3, 8]),
        ("operand", [4, 9]),
        ("full", list(range(2, 12))),  # every input from v0 on, EOS excluded
        (None, list(range(2, 12))),
    ],
)
def test_arithmetic_intervention_positions_are_the_steps_that_set_the_variable(variable, positions):
    task = ArithmeticTask()
    tokens = np.array([task.vocab.encode("BOS 2 5 + 3 = 8 , - 6 = 2 EOS")])
    assert np.flatnonzero(task.eligible_positions(tokens, variable)[0]).tolist() == positions


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_at_a_cumu_val_position_the_running_value_is_the_number_just_read(seed):
    task = ArithmeticTask()
    batch = task.sample(20, np.random.default_rng(seed), "all")
    model = task.causal_model()
    for tokens, length, k in zip(batch.tokens, batch.lengths, batch.quantity):
        trace = model.trace(tokens[:length], int(k))
        for tau in np.flatnonzero(task.eligible_positions(tokens[None], "cumu_val")[0]):
            assert task.number[trace[tau]["cumu_val"]] == tokens[tau]


def test_arithmetic_exact_encoding_and_mask():
    task = ArithmeticTask()
    tokens = np.array([task.vocab.encode("BOS 2 5 + 3 = 8 , - 6 = 2 EOS")])
    assert emissions_match(task.causal_model(), tokens[0], tokens.shape[1], 2)
    mask = task.response_mask(tokens)[0]
    assert task.vocab.decode(targets_of(tokens)[0][mask]) == "8 2 EOS"
