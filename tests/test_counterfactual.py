"""Counterfactuals: one hand-worked example per variable, plus invariances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mas_cli.tasks import ArithmeticTask, CountingTask, make_counterfactuals
from mas_cli.tasks.counterfactual import continue_from, intervened_state
from mas_cli.tasks.vocab import EOS, PAD

pytestmark = pytest.mark.fast  # pure computation: the tier a developer runs while working

COUNT = CountingTask()
ARITH = ArithmeticTask()
BASE4 = "BOS D0 D1 D2 D0 T R R R R EOS"  # n = 4; positions 1-4 demo, 5 T, 6-9 R
SOURCE6 = "BOS D1 D1 D1 D1 D1 D1 T R R R R R R EOS"  # n = 6


def swap(task, causal, base, n_base, tau, source, n_source, sigma, variable, seed=0):
    """The counterfactual, as text: the intervened state at τ, then what the program emits."""
    model, base = task.causal_model(causal), np.array(task.vocab.encode(base))
    state = intervened_state(model, base, n_base, tau, np.array(task.vocab.encode(source)), n_source, sigma, variable)
    return task.vocab.decode(continue_from(model, state, base, tau, np.random.default_rng(seed)))


@pytest.mark.parametrize(
    ("causal", "tau", "sigma", "variable", "expected"),
    [
        # demo step τ=2 (count 2) receives the source count 5 ≥ n=4: trigger now, then 5 responses
        ("up_down", 2, 5, "count", "BOS D0 D1 T R R R R R EOS"),
        # response step τ=7 (2 left) receives count 3 from the source's demo step σ=3
        ("up_down", 7, 3, "count", "BOS D0 D1 D2 D0 T R R R R R EOS"),
        # demo step τ=2 receives phase=response from σ=8: the 2 counted so far are counted down
        ("up_down", 2, 8, "phase", "BOS D0 D1 R R EOS"),
        # full swap from σ=12 (response phase, 1 left)
        ("up_down", 2, 12, "full", "BOS D0 D1 R EOS"),
        # Up-Up: at τ=6 (demo 4, resp 1) the demo count becomes 2 -> one more response, then EOS
        ("up_up", 6, 2, "demo_count", "BOS D0 D1 D2 D0 T R R EOS"),
        # Up-Up: resp_count 4 from σ=11 at τ=6 -> the target is already reached
        ("up_up", 6, 11, "resp_count", "BOS D0 D1 D2 D0 T R EOS"),
        # Up-Up: phase=response at demo step τ=2: respond until resp_count reaches demo_count 2
        ("up_up", 2, 8, "phase", "BOS D0 D1 R R EOS"),
        # context-distributed: nothing is stored, a full swap changes nothing
        ("context", 7, 3, "full", BASE4),
    ],
)
def test_counting_hand_worked(causal, tau, sigma, variable, expected):
    assert swap(COUNT, causal, BASE4, 4, tau, SOURCE6, 6, sigma, variable) == expected


ARITH_BASE = "BOS 2 5 + 3 = 8 , - 6 = 2 EOS"  # positions: 3 '+', 4 '3', 5 '=', 7 ',' ...
ARITH_SOURCE = "BOS 3 10 - 7 = 3 , + 9 = 12 , - 2 = 10 EOS"


@pytest.mark.parametrize(
    ("tau", "sigma", "variable", "expected"),
    [
        # after ',' (running value 8) the value becomes 10; base op and operand still fit
        (7, 2, "cumu_val", "BOS 2 5 + 3 = 8 , - 6 = 4 EOS"),
        # after the operand 3 is read it becomes 7 (the source's first operand)
        (4, 4, "operand", "BOS 2 5 + 3 = 12 , - 6 = 6 EOS"),
        # one operation left at ',' becomes zero left: the next '=' makes it -1, so EOS after it
        (7, 16, "remaining_ops", "BOS 2 5 + 3 = 8 , - 6 = 2 EOS"),
    ],
)
def test_arithmetic_hand_worked(tau, sigma, variable, expected):
    assert swap(ARITH, None, ARITH_BASE, 2, tau, ARITH_SOURCE, 3, sigma, variable) == expected


def test_arithmetic_operator_swap():
    # after '+' is read (τ=3) the operator becomes the source's '-' (σ=3): 5 - 3 = 2; the base's
    # next operator '-' is reused, but its operand 6 no longer fits (2 - 6 < 0) so one is drawn
    out = swap(ARITH, None, ARITH_BASE, 2, 3, ARITH_SOURCE, 3, 3, "op").split()
    assert out[:9] == ["BOS", "2", "5", "+", "3", "=", "2", ",", "-"]
    assert int(out[9]) <= 2 and out[10] == "=" and int(out[11]) == 2 - int(out[9]) and out[12] == "EOS"


def test_arithmetic_more_remaining_ops_adds_an_operation():
    # At ',' one op is left; the source has two left after its first ',' (σ=7)
    out = swap(ARITH, None, ARITH_BASE, 2, 7, ARITH_SOURCE, 3, 7, "remaining_ops").split()
    assert out[:13] == ["BOS", "2", "5", "+", "3", "=", "8", ",", "-", "6", "=", "2", ","]
    assert out[-1] == "EOS" and len(out) == 18 and out[14] in map(str, range(21))


def test_swapping_identical_values_reproduces_the_base():
    rng = np.random.default_rng(0)
    for task, variables in (
        (CountingTask(void_p=0.3), ("count", "phase", "full")),
        (ArithmeticTask(), ("cumu_val", "remaining_ops", "op", "operand", "full")),
    ):
        batch = task.sample(30, rng, "all")
        model = task.causal_model()
        for tokens, length, q in zip(batch.tokens, batch.lengths, batch.quantity):
            seq = tokens[:length]
            for tau in np.flatnonzero(task.eligible_positions(seq[None])[0]):
                for variable in variables:
                    state = intervened_state(model, seq, q, tau, seq, q, tau, variable)
                    assert continue_from(model, state, seq, tau, rng) == seq.tolist()


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    variable=st.sampled_from(["count", "phase", "full"]),
    same_position=st.booleans(),
)
def test_make_counterfactuals_shapes_and_labels(seed, variable, same_position):
    task = CountingTask(void_p=0.2)
    cf = make_counterfactuals(task, 64, variable, np.random.default_rng(seed), same_position=same_position)
    assert len(cf) == 64
    positions = np.arange(cf.tokens.shape[1])[None, :]
    assert not (cf.label_mask & (positions < cf.tau[:, None])).any()
    assert cf.label_mask.any(axis=1).all()  # every item scores at least its EOS
    rows = np.arange(64)
    assert (cf.tokens[rows, cf.tau] == cf.base[rows, cf.tau]).all()  # the prefix is the base's
    if same_position:
        assert (cf.tau == cf.sigma).all()


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    causal=st.sampled_from(["up_down", "up_up"]),
    variable=st.sampled_from(["count", "phase", "full"]),
)
def test_the_scored_predictions_are_exactly_the_response_phase_from_tau_on(seed, causal, variable):
    """Each R and the EOS is scored; a demo token, a void or a T never is, even where a phase swap
    sends a response step back into the demo phase (its demo tokens are drawn at random, so no
    model could predict them) or a demo step straight into the response phase (no T at all)."""
    task = CountingTask(void_p=0.2)
    if variable not in task.causal_model(causal).variables and variable != "full":
        variable = "full"
    cf = make_counterfactuals(task, 64, variable, np.random.default_rng(seed), causal_model=causal)
    targets = np.full_like(cf.tokens, PAD)
    targets[:, :-1] = cf.tokens[:, 1:]
    after_tau = np.arange(cf.tokens.shape[1])[None, :] >= cf.tau[:, None]
    response = np.isin(targets, (task.response, EOS))
    assert np.array_equal(cf.label_mask, after_tau & response)


def test_a_phase_swap_into_the_demo_phase_scores_only_the_new_response():
    # response step τ=7 receives the demo phase (count 2 left < n=4): two demo tokens, a second T
    task = COUNT
    tokens = swap(task, "up_down", BASE4, 4, 7, SOURCE6, 6, 3, "phase")
    encoded = np.array([task.vocab.encode(tokens)])
    scored = np.flatnonzero(task.response_mask(encoded)[0])
    assert tokens.split()[scored[0]] == "T" and tokens.split().count("T") == 2
    assert scored[0] == len(tokens.split()) - 1 - tokens.split()[::-1].index("T")


def test_same_phase_pairs_steps_of_one_phase():
    task = CountingTask()
    cf = make_counterfactuals(task, 200, "full", np.random.default_rng(1), causal_model="context", same_phase=True)
    rows = np.arange(200)
    base_phase = task.phase_of(cf.base)[rows, cf.tau]
    source_phase = task.phase_of(cf.source)[rows, cf.sigma]
    assert (base_phase == source_phase).all()
    assert np.array_equal(cf.tokens[:, : cf.base.shape[1]], cf.base[:, : cf.tokens.shape[1]])


def test_counterfactuals_are_seeded():
    a = make_counterfactuals(COUNT, 50, "count", np.random.default_rng(5))
    b = make_counterfactuals(COUNT, 50, "count", np.random.default_rng(5))
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.tau, b.tau)


def test_unknown_variable_names_the_choices():
    with pytest.raises(ValueError, match="choose one of count, phase, full"):
        make_counterfactuals(COUNT, 5, "colour", np.random.default_rng(0))


def test_cross_task_counterfactuals_give_the_target_variable_the_source_value():
    count_task, arithmetic = CountingTask(), ArithmeticTask()
    cf = make_counterfactuals(
        arithmetic, 60, "cumu_val", np.random.default_rng(4), source_task=count_task, source_variable="count"
    )
    up_down = count_task.causal_model()
    for i in range(60):
        source_count = up_down.trace(cf.source[i][cf.source[i] != 0], 0)[cf.sigma[i]]["count"]
        assert cf.values["cumu_val"][i] == source_count
        assert 0 <= source_count <= arithmetic.max_value  # only values both tasks hold survive


def test_a_map_nothing_can_express_is_refused(monkeypatch):
    from mas_cli.tasks import counterfactual
    from mas_cli.tasks.causal import OutOfRange

    def never(*args, **kwargs):
        raise OutOfRange("nothing fits")

    monkeypatch.setattr(counterfactual, "continue_from", never)
    with pytest.raises(ValueError, match="no counterfactual swapping count into count can be expressed"):
        make_counterfactuals(CountingTask(), 5, "count", np.random.default_rng(0))
