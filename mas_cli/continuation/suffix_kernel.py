"""A frozen GRU or LSTM continued from an intervened state: the alignment step's hot path.

The models never change during alignment, so two things are fixed for the whole fit:
  * the input projection of every token, W_ih·embed(token) + b_ih, is a table [V, gates·H]
    computed once (`SuffixKernel`): a suffix step only looks its rows up;
  * backward needs only the gradient with respect to the intervened state, never a weight's.
`run` steps the suffixes after τ (packed: longest first, so no step is spent on padding) inside
one autograd Function. Per step, forward is one matmul and the gate update, which also yields the
step's backward factors (the derivatives of the gates); each backward step is one matmul and
the products with those factors, accumulating into the previous step's gradient in place (the
step loops: suffix_loops.py). At width 128 a step's matmul takes ~35 µs and every further small op
~5 µs, so the op count, not the arithmetic, sets the speed (docs/BENCHMARKS.md). PyTorch's own
cell would record every small op of every step for autograd instead.
tests/test_suffix_kernel.py checks values and gradients against the model's own nn.GRU / nn.LSTM.
"""

from __future__ import annotations

import torch
from torch import nn

from mas_cli.continuation import suffix_loops as loops


class SuffixKernel:
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


class _Layout:
    """The packed steps: each step's row count, the permutation from state rows to packed rows,
    and which outputs are returned."""

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


class _GRUSuffix(torch.autograd.Function):
    """r = σ(i_r + h W_rᵀ + b_r), z = σ(i_z + …), n = tanh(i_n + r ⊙ (h W_nᵀ + b_n)),
    h' = (1 − z) ⊙ n + z ⊙ h (PyTorch's GRU), stepped over packed suffixes."""

    @staticmethod
    def forward(ctx, state, tokens, layout: _Layout, kernel: SuffixKernel):
        gh = kernel.table.index_select(0, tokens)  # [P, 3H]: i_r + b_r, i_z + b_z, 2 b_n
        i_n = kernel.table_n.index_select(0, tokens)  # [P, H]: 2 i_n
        backward = ctx.needs_input_grad[0]  # evaluation: no backward will come, no factors
        out, factors, z = loops.gru_forward(gh, i_n, layout.first_state(state), kernel.w_hh_t, layout.sizes, backward)
        if backward:
            ctx.layout, ctx.kernel = layout, kernel
            ctx.save_for_backward(factors, z)
        return layout.kept(out)

    @staticmethod
    def backward(ctx, grad_out):
        factors, z = ctx.saved_tensors
        grad = ctx.layout.grad_buffer(grad_out, len(z))  # dh of each step, the next step's carry added in
        state_grad = loops.gru_backward(grad, factors, z, ctx.kernel.w_hh, ctx.layout.sizes)
        return ctx.layout.state_grad(state_grad), None, None, None


class _LSTMSuffix(torch.autograd.Function):
    """i, f, o = σ(·), g = tanh(·) of x_t + h W_hhᵀ + b_hh; c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c')
    (PyTorch's LSTM), stepped over packed suffixes from the site [h; c]."""

    @staticmethod
    def forward(ctx, state, tokens, layout: _Layout, kernel: SuffixKernel):
        acts = kernel.table.index_select(0, tokens)  # [P, 4H]: x W_ihᵀ + both biases
        backward = ctx.needs_input_grad[0]
        out, *factors = loops.lstm_forward(acts, layout.first_state(state), kernel.w_hh_t, layout.sizes, backward)
        if backward:
            ctx.layout, ctx.kernel = layout, kernel
            ctx.save_for_backward(*factors)
        return layout.kept(out)

    @staticmethod
    def backward(ctx, grad_out):
        factors, through_c, forget = ctx.saved_tensors
        grad = ctx.layout.grad_buffer(grad_out, len(forget))  # dh of each step, the next step's carry added in
        state_grad = loops.lstm_backward(grad, factors, through_c, forget, ctx.kernel.w_hh, ctx.layout.sizes)
        return ctx.layout.state_grad(state_grad), None, None, None
