"""The step loops of the frozen-RNN suffix kernel (suffix_kernel.py), in eager PyTorch: each step is
its one matmul and a few in-place elementwise ops, no autograd. (A C++ build of these loops gave
1.10× on a whole default fit and cost a compiler, a first-run build and a build lock; it was
removed: docs/BENCHMARKS.md.)

Layout: packed suffixes, time-major, rows sorted longest first; step t holds the first
sizes[t] rows of the batch, and packed row p of step t ≥ 1 continues row p − sizes[t − 1].
Gate pre-activations arrive as suffix_kernel.py's `SuffixKernel` stores them (tanh(x) = 2σ(2x) − 1: the
tanh gates doubled; LSTM forward order (i, f, o, g)); the backward factors come back in PyTorch's
gate order, to multiply W_hh as it is.
"""

from __future__ import annotations

import numpy as np
import torch

_MINUS_ONE = torch.tensor(-1.0)


def _tanh_of_doubled(sigmoid_of_doubled: torch.Tensor) -> torch.Tensor:
    """tanh(x) = 2σ(2x) − 1, in place."""
    return torch.add(_MINUS_ONE, sigmoid_of_doubled, alpha=2, out=sigmoid_of_doubled)


def _previous_rows(first: torch.Tensor, out: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """What each packed row continued from: the first state, then the previous step's output."""
    sizes = np.asarray(sizes)
    previous = torch.from_numpy(np.arange(sizes[0], sizes.sum()) - np.repeat(sizes[:-1], sizes[1:]))
    return torch.cat([first, out.index_select(0, previous)])


def gru_forward(gh, i_n, first, w_hh_t, sizes: list[int], factors: bool):
    """gh [P, 3H]: i_r + b_r, i_z + b_z, 2 b_n (overwritten); i_n [P, H]: 2 i_n; first [N, H].
    Returns h' of every step [P, H] and, with `factors`, d(gh)/dh' [P, 3H] and z [P, H]."""
    hidden = first.shape[1]
    n, out = torch.empty_like(i_n), torch.empty_like(i_n)
    steps = zip(
        *(t.split(sizes) for t in (gh, gh[:, : 2 * hidden], gh[:, :hidden], gh[:, hidden : 2 * hidden])),
        *(t.split(sizes) for t in (gh[:, 2 * hidden :], i_n, n, out)),
    )
    h = first
    for step_gh, rz, r, z, gh_n, step_i_n, step_n, step_out in steps:
        h = h[: len(step_gh)]
        step_gh.addmm_(h, w_hh_t)  # the step's one matmul
        rz.sigmoid_()
        _tanh_of_doubled(torch.addcmul(step_i_n, r, gh_n, out=step_n).sigmoid_())
        h = torch.lerp(step_n, h, z, out=step_out)  # (1 − z) n + z h
    if not factors:
        return out, None, None
    # d(gh)/dh' for every step at once, in place
    r, z, gh_n_doubled = gh[:, :hidden], gh[:, hidden : 2 * hidden], gh[:, 2 * hidden :]
    d_gh = torch.empty_like(gh)
    d_r, d_z, d_n = d_gh[:, :hidden], d_gh[:, hidden : 2 * hidden], d_gh[:, 2 * hidden :]
    torch.mul(torch.rsub(n * n, 1), torch.rsub(z, 1), out=d_n)  # through n: (1 − z)(1 − n²)
    torch.mul(torch.addcmul(r, r, r, value=-1).mul_(gh_n_doubled), d_n, out=d_r).mul_(0.5)  # … r(1 − r) gh_n
    h_minus_n = _previous_rows(first, out, sizes).sub_(n)
    torch.mul(torch.addcmul(z, z, z, value=-1), h_minus_n, out=d_z)  # z(1 − z)(h − n)
    d_n.mul_(r)
    return out, d_gh, z.contiguous()


def gru_backward(grad, d_gh_dh, z, w_hh, sizes: list[int]):
    """grad [P, H]: dh' of every step (the carries are added in place). Returns d(first) [N, H]."""
    hidden = z.shape[1]
    d_gh, first = grad.new_empty(sizes[0], 3, hidden), grad.new_empty(sizes[0], hidden)
    steps = list(zip(*(t.split(sizes) for t in (grad, d_gh_dh.view(-1, 3, hidden), z))))
    for t in range(len(steps) - 1, -1, -1):
        dh, step_factors, step_z = steps[t]
        size = len(dh)
        step_d_gh = torch.mul(dh.unsqueeze(1), step_factors, out=d_gh[:size]).view(size, 3 * hidden)
        if t:  # into the previous step: dh_prev += dh ⊙ z + d(gh) W_hh
            steps[t - 1][0][:size].addcmul_(dh, step_z).addmm_(step_d_gh, w_hh)
        else:
            torch.mul(dh, step_z, out=first).addmm_(step_d_gh, w_hh)
    return first


def lstm_forward(acts, first, w_hh_t, sizes: list[int], factors: bool):
    """acts [P, 4H]: x W_ihᵀ + both biases in (i, f, o, 2g) order (overwritten); first [N, 2H]:
    [h; c]. Returns h' of every step [P, H] and, with `factors`, d(gates)/d(dc or dh) [P, 4H] in
    (i, f, g, o) order, o (1 − tanh²c') [P, H] and f [P, H]."""
    hidden = first.shape[1] // 2
    f_c = torch.empty_like(acts[:, :hidden])  # f ⊙ c (the forget gate's share of c')
    c_tanh, out = torch.empty_like(f_c), torch.empty_like(f_c)
    gates = [acts[:, j * hidden : (j + 1) * hidden] for j in range(4)]
    steps = zip(*(t.split(sizes) for t in (acts, *gates, f_c, c_tanh, out)))
    h, c = first[:, :hidden], first[:, hidden:]
    for act, i, f, o, g, step_f_c, step_c_tanh, step_out in steps:
        size = len(act)
        act.addmm_(h[:size], w_hh_t).sigmoid_()  # the step's one matmul
        _tanh_of_doubled(g)
        c = torch.addcmul(torch.mul(f, c[:size], out=step_f_c), i, g)
        h = torch.mul(o, _tanh_of_doubled(torch.mul(c, 2, out=step_c_tanh).sigmoid_()), out=step_out)
    if not factors:
        return out, None, None, None
    i, f, o, g = gates
    d_gates = torch.empty_like(acts)
    d_i, d_f, d_g, d_o = d_gates.chunk(4, 1)
    torch.mul(torch.addcmul(i, i, i, value=-1), g, out=d_i)  # g i(1 − i)
    torch.mul(torch.rsub(f, 1), f_c, out=d_f)  # c f(1 − f)
    torch.mul(torch.rsub(g * g, 1), i, out=d_g)  # i (1 − g²)
    torch.mul(torch.addcmul(o, o, o, value=-1), c_tanh, out=d_o)  # tanh(c') o(1 − o)
    through_c = torch.rsub(c_tanh * c_tanh, 1).mul_(o)  # o (1 − tanh²(c'))
    return out, d_gates, through_c, f.contiguous()


def lstm_backward(grad, d_gates_dx, through_c, forget, w_hh, sizes: list[int]):
    """grad [P, H]: dh' of every step (the carries are added in place). Returns d(first) [N, 2H]."""
    hidden = forget.shape[1]
    grad_c = torch.zeros_like(grad)  # the carry into each step's dc
    d_gates = grad.new_empty(sizes[0], 4, hidden)
    quarters = d_gates_dx.view(-1, 4, hidden)
    parts = (grad, grad_c, quarters[:, :3], quarters[:, 3], through_c, forget)
    steps = list(zip(*(t.split(sizes) for t in parts)))
    first = grad.new_empty(sizes[0], 2 * hidden)
    for t in range(len(steps) - 1, -1, -1):
        dh, dc, driven_by_c, driven_by_h, step_through_c, step_forget = steps[t]
        size = len(dh)
        dc.addcmul_(dh, step_through_c)
        step_d = d_gates[:size]
        torch.mul(dc.unsqueeze(1), driven_by_c, out=step_d[:, :3])  # i, f, g are driven by dc
        torch.mul(dh, driven_by_h, out=step_d[:, 3])  # o by dh
        flat = step_d.view(size, 4 * hidden)
        if t:  # into the previous step: dh_prev += d(gates) W_hh, dc_prev = dc ⊙ f
            steps[t - 1][0][:size].addmm_(flat, w_hh)
            torch.mul(dc, step_forget, out=steps[t - 1][1][:size])
        else:
            torch.mm(flat, w_hh, out=first[:, :hidden])
            torch.mul(dc, step_forget, out=first[:, hidden:])
    return first
