"""A frozen GRU or LSTM continued from an intervened state: the alignment step's hot path.

The models never change during alignment, so two things are fixed for the whole fit:
  * the input projection of every token, W_ih·embed(token) + b_ih, is a table [V, gates·H]
    computed once (`Frozen`): a suffix step only looks its rows up;
  * backward needs only the gradient with respect to the intervened state, never a weight's.
`run` steps the suffixes after τ (packed: longest first, so no step is spent on padding) inside
one autograd Function. Per step, forward is one matmul and the gate update; every derivative of
the gates with respect to their inputs is then computed for all steps at once, so each backward
step is one matmul and two or three products, accumulating into the previous step's gradient in
place. The step loops are short on purpose: at width 128 a step's matmul takes ~50 µs and every
further op ~5–10 µs, so the op count, not the arithmetic, sets the speed (docs/BENCHMARKS.md).
PyTorch's own cell would record every small op of every step for autograd instead.
tests/test_kernels.py checks values and gradients against the model's own nn.GRU / nn.LSTM.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Frozen:
    """What a suffix step needs of one frozen RNN: token tables with every bias folded in, and
    the recurrent weights.

    tanh(x) is computed as 2σ(2x) − 1: PyTorch's CPU tanh takes ~4× as long as its sigmoid, and
    doubling a weight is exact, so the gates that go through tanh (GRU n, LSTM g) are stored
    doubled. LSTM gates are stored forward in the order (i, f, o, g), so one sigmoid covers a
    step; backward keeps PyTorch's order (i, f, g, o) and the weights as they are."""

    def __init__(self, model):
        rnn = model.rnn
        self.lstm, hidden = isinstance(rnn, nn.LSTM), rnn.hidden_size
        rows = torch.arange(rnn.weight_hh_l0.shape[0])
        scale = torch.ones(len(rows))
        with torch.no_grad():
            inputs = model.embedding.weight @ rnn.weight_ih_l0.T + rnn.bias_ih_l0  # [V, gates·H]
            if self.lstm:  # (i, f, g, o) -> (i, f, o, g), g doubled
                rows = torch.cat([rows[: 2 * hidden], rows[3 * hidden :], rows[2 * hidden : 3 * hidden]])
                scale[3 * hidden :] = 2
                self.table = ((inputs + rnn.bias_hh_l0)[:, rows] * scale).contiguous()
            else:  # r and z take both biases; n adds i_n after r gates h W_nᵀ + b_n; n doubled
                scale[2 * hidden :] = 2
                self.table_n = 2 * inputs[:, 2 * hidden :]
                inputs[:, 2 * hidden :] = 0  # i_n is added after r gates the recurrent part
                self.table = (inputs + rnn.bias_hh_l0) * scale
            self.w_hh_t = (rnn.weight_hh_l0[rows].T * scale).contiguous()  # [H, gates·H]: forward h @ W_hhᵀ
            self.w_hh = rnn.weight_hh_l0.contiguous()  # [gates·H, H]: backward d(gates) @ W_hh

    def run(self, state, tokens, batch_sizes: list[int], order=None, keep=None) -> torch.Tensor:
        """h after each step [P, H] in the packed (time-major) layout, from `state` [N, D] (the
        hidden site: h, or [h; c]) over the packed suffix `tokens` [P] (rows sorted longest first;
        step t holds the first batch_sizes[t] rows). `order` [N]: the state row of each packed
        row, a permutation (default: the same row); `keep`: return only these packed rows (default: all)."""
        if batch_sizes[0] != len(state):
            raise ValueError(f"every state row runs at least one step: {len(state)} rows, {batch_sizes[0]} at step 0")
        kernel = _LSTMSuffix if self.lstm else _GRUSuffix
        return kernel.apply(state, tokens, _Layout(batch_sizes, order, keep), self)


_MINUS_ONE = torch.tensor(-1.0)


def _tanh_of_doubled(sigmoid_of_doubled: torch.Tensor) -> torch.Tensor:
    """tanh(x) = 2σ(2x) − 1, in place."""
    return torch.add(_MINUS_ONE, sigmoid_of_doubled, alpha=2, out=sigmoid_of_doubled)


class _Layout:
    """The packed steps: each step's row count, the row each row continues from, the permutation
    from state rows to packed rows, and which outputs are returned."""

    def __init__(self, batch_sizes: list[int], order, keep):
        self.sizes, self.order, self.keep = batch_sizes, order, keep

    def first_state(self, state: torch.Tensor) -> torch.Tensor:
        return state if self.order is None else state.index_select(0, self.order)

    def kept(self, out: torch.Tensor) -> torch.Tensor:
        return out if self.keep is None else out.index_select(0, self.keep)

    def grad_buffer(self, grad: torch.Tensor, rows: int) -> torch.Tensor:
        """The outputs' gradient in the packed layout, as a buffer the carry accumulates into."""
        if self.keep is None:
            return grad.contiguous().clone()
        return grad.new_zeros(rows, grad.shape[1]).index_copy_(0, self.keep, grad.contiguous())

    def state_grad(self, grad: torch.Tensor) -> torch.Tensor:
        return grad if self.order is None else torch.empty_like(grad).index_copy_(0, self.order, grad)

    def previous_rows(self, first: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """What each packed row continued from: the first state, then the previous step's output
        (packed row p of step t ≥ 1 continues packed row p − sizes[t − 1], the same item)."""
        sizes = np.asarray(self.sizes)
        previous = torch.from_numpy(np.arange(sizes[0], sizes.sum()) - np.repeat(sizes[:-1], sizes[1:]))
        return torch.cat([first, out.index_select(0, previous)])


class _GRUSuffix(torch.autograd.Function):
    """r = σ(i_r + h W_rᵀ + b_r), z = σ(i_z + …), n = tanh(i_n + r ⊙ (h W_nᵀ + b_n)),
    h' = (1 − z) ⊙ n + z ⊙ h (PyTorch's GRU), stepped over packed suffixes."""

    @staticmethod
    def forward(ctx, state, tokens, layout: _Layout, frozen: Frozen):
        hidden, sizes = state.shape[1], layout.sizes
        # After a step's matmul, gh holds r and z before their sigmoid and 2(h W_nᵀ + b_n).
        gh = frozen.table.index_select(0, tokens)  # [P, 3H]: i_r + b_r, i_z + b_z, 2 b_n
        i_n = frozen.table_n.index_select(0, tokens)  # [P, H]: 2 i_n
        n, out = torch.empty_like(i_n), torch.empty_like(i_n)
        steps = zip(
            *(t.split(sizes) for t in (gh, gh[:, : 2 * hidden], gh[:, :hidden], gh[:, hidden : 2 * hidden])),
            *(t.split(sizes) for t in (gh[:, 2 * hidden :], i_n, n, out)),
        )
        first = h = layout.first_state(state)
        for step_gh, rz, r, z, gh_n, step_i_n, step_n, step_out in steps:
            h = h[: len(step_gh)]
            step_gh.addmm_(h, frozen.w_hh_t)  # the step's one matmul
            rz.sigmoid_()
            _tanh_of_doubled(torch.addcmul(step_i_n, r, gh_n, out=step_n).sigmoid_())
            h = torch.lerp(step_n, h, z, out=step_out)  # (1 − z) n + z h
        if not ctx.needs_input_grad[0]:  # evaluation: no backward will come
            return layout.kept(out)
        # d(gh)/dh_t = dh_t ⊙ factors (one block per gate), for every step at once, in place
        r, z, gh_n_doubled = gh[:, :hidden], gh[:, hidden : 2 * hidden], gh[:, 2 * hidden :]
        factors = torch.empty_like(gh)
        d_r, d_z, d_n = factors[:, :hidden], factors[:, hidden : 2 * hidden], factors[:, 2 * hidden :]
        torch.mul(torch.rsub(n * n, 1), torch.rsub(z, 1), out=d_n)  # through n: (1 − z)(1 − n²)
        torch.mul(torch.addcmul(r, r, r, value=-1).mul_(gh_n_doubled), d_n, out=d_r).mul_(0.5)  # … r(1 − r) gh_n
        h_minus_n = layout.previous_rows(first, out).sub_(n)
        torch.mul(torch.addcmul(z, z, z, value=-1), h_minus_n, out=d_z)  # z(1 − z)(h − n)
        d_n.mul_(r)
        ctx.layout = layout
        ctx.save_for_backward(factors, z.contiguous(), frozen.w_hh)
        return layout.kept(out)

    @staticmethod
    def backward(ctx, grad_out):
        factors, z, w_hh = ctx.saved_tensors
        layout, hidden = ctx.layout, z.shape[1]
        grad = layout.grad_buffer(grad_out, len(z))  # dh of each step, the next step's carry added in
        d_gh, state_grad = grad.new_empty(layout.sizes[0], 3, hidden), grad.new_empty(layout.sizes[0], hidden)
        steps = list(zip(*(t.split(layout.sizes) for t in (grad, factors.view(-1, 3, hidden), z))))
        for t in range(len(steps) - 1, -1, -1):
            dh, step_factors, step_z = steps[t]
            size = len(dh)
            step_d_gh = torch.mul(dh.unsqueeze(1), step_factors, out=d_gh[:size]).view(size, 3 * hidden)
            if t:  # into the previous step: dh_prev += dh ⊙ z + d(gh) W_hh
                steps[t - 1][0][:size].addcmul_(dh, step_z).addmm_(step_d_gh, w_hh)
            else:
                torch.mul(dh, step_z, out=state_grad).addmm_(step_d_gh, w_hh)
        return layout.state_grad(state_grad), None, None, None


class _LSTMSuffix(torch.autograd.Function):
    """i, f, o = σ(·), g = tanh(·) of x_t + h W_hhᵀ + b_hh; c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c')
    (PyTorch's LSTM), stepped over packed suffixes from the site [h; c]."""

    @staticmethod
    def forward(ctx, state, tokens, layout: _Layout, frozen: Frozen):
        hidden, sizes = state.shape[1] // 2, layout.sizes
        # [P, 4H]: x W_ihᵀ + both biases, then each step's σ(i), σ(f), σ(o), tanh(g) in place
        acts = frozen.table.index_select(0, tokens)
        f_c = torch.empty_like(acts[:, :hidden])  # f ⊙ c (the forget gate's share of c')
        c_tanh, out = torch.empty_like(f_c), torch.empty_like(f_c)
        gates = [acts[:, j * hidden : (j + 1) * hidden] for j in range(4)]
        steps = zip(*(t.split(sizes) for t in (acts, *gates, f_c, c_tanh, out)))
        first = layout.first_state(state)
        h, c = first[:, :hidden], first[:, hidden:]
        for act, i, f, o, g, step_f_c, step_c_tanh, step_out in steps:
            size = len(act)
            act.addmm_(h[:size], frozen.w_hh_t).sigmoid_()  # the step's one matmul
            _tanh_of_doubled(g)
            c = torch.addcmul(torch.mul(f, c[:size], out=step_f_c), i, g)
            h = torch.mul(o, _tanh_of_doubled(torch.mul(c, 2, out=step_c_tanh).sigmoid_()), out=step_out)
        if not ctx.needs_input_grad[0]:  # evaluation: no backward will come
            return layout.kept(out)
        # d(gates)/d(h_t, c_t) for every step at once, in PyTorch's gate order (i, f, g, o)
        i, f, o, g = gates
        factors = torch.empty_like(acts)
        d_i, d_f, d_g, d_o = factors.chunk(4, 1)
        torch.mul(torch.addcmul(i, i, i, value=-1), g, out=d_i)  # g i(1 − i)
        torch.mul(torch.rsub(f, 1), f_c, out=d_f)  # c f(1 − f)
        torch.mul(torch.rsub(g * g, 1), i, out=d_g)  # i (1 − g²)
        torch.mul(torch.addcmul(o, o, o, value=-1), c_tanh, out=d_o)  # tanh(c') o(1 − o)
        through_c = torch.rsub(c_tanh * c_tanh, 1).mul_(o)  # o (1 − tanh²(c'))
        ctx.layout = layout
        ctx.save_for_backward(factors, through_c, f.contiguous(), frozen.w_hh)
        return layout.kept(out)

    @staticmethod
    def backward(ctx, grad_out):
        factors, through_c, forget, w_hh = ctx.saved_tensors
        layout, hidden, sizes = ctx.layout, forget.shape[1], ctx.layout.sizes
        grad_h = layout.grad_buffer(grad_out, len(forget))  # dh of each step, the next step's carry added in
        grad_c = torch.zeros_like(grad_h)  # the carry into each step's dc
        d_gates = grad_h.new_empty(sizes[0], 4, hidden)
        quarters = factors.view(-1, 4, hidden)
        parts = (grad_h, grad_c, quarters[:, :3], quarters[:, 3], through_c, forget)
        steps = list(zip(*(t.split(sizes) for t in parts)))
        state_grad = grad_h.new_empty(sizes[0], 2 * hidden)
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
                torch.mm(flat, w_hh, out=state_grad[:, :hidden])
                torch.mul(dc, step_forget, out=state_grad[:, hidden:])
        return layout.state_grad(state_grad), None, None, None
