"""A frozen GRU or LSTM continued from an intervened state: the alignment step's hot path.

The models never change during alignment, so two things are fixed for the whole fit:
  * the input projection of every token, W_ih·embed(token) + b_ih, is a table [V, gates·H]
    computed once (`Frozen`): a suffix step only looks its rows up;
  * backward needs only the gradient with respect to the intervened state, never a weight's.
`run` steps the suffixes after τ (packed: longest first, so no step is spent on padding) inside
one autograd Function. Per step, forward is one matmul and the gate update; every derivative of
the gates with respect to their inputs is then computed for all steps at once, so each backward
step is one matmul and a few products. PyTorch's own cell would record every small op of every
step for autograd instead. tests/test_kernels.py checks values and gradients against the model's
own nn.GRU / nn.LSTM.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Frozen:
    """What a suffix step needs of one frozen RNN: the token table and the recurrent weights."""

    def __init__(self, model):
        rnn = model.rnn
        self.lstm = isinstance(rnn, nn.LSTM)
        with torch.no_grad():
            self.table = model.embedding.weight @ rnn.weight_ih_l0.T + rnn.bias_ih_l0  # [V, gates·H]
            self.w_hh_t = rnn.weight_hh_l0.T.contiguous()  # [H, gates·H]: forward h @ W_hhᵀ
            self.w_hh = rnn.weight_hh_l0.contiguous()  # [gates·H, H]: backward d(gates) @ W_hh
            self.b_hh = rnn.bias_hh_l0.detach()

    def run(self, state: torch.Tensor, tokens: torch.Tensor, batch_sizes: list[int]) -> torch.Tensor:
        """h after each step [P, H] in the packed (time-major) layout, from `state` [N, D] (the
        hidden site: h, or [h; c]) over the packed suffix `tokens` [P] (rows sorted longest first;
        step t holds the first batch_sizes[t] rows)."""
        kernel = _LSTMSuffix if self.lstm else _GRUSuffix
        return kernel.apply(state, self.table[tokens], batch_sizes, self.w_hh_t, self.w_hh, self.b_hh)


def _steps(batch_sizes: list[int]) -> list[tuple[int, int]]:
    """(first packed row, rows) of each step."""
    starts = np.concatenate([[0], np.cumsum(batch_sizes)[:-1]])
    return list(zip(starts.tolist(), batch_sizes))


def _plus_carry(grad: torch.Tensor, carry: torch.Tensor | None) -> torch.Tensor:
    """A step's output gradient plus what flows back from the next step, which ran only the first
    len(carry) of its rows (the packed batch shrinks as suffixes end)."""
    if carry is None:
        return grad
    grad = grad.clone()
    grad[: len(carry)] += carry
    return grad


class _GRUSuffix(torch.autograd.Function):
    """r = σ(i_r + h W_rᵀ + b_r), z = σ(i_z + …), n = tanh(i_n + r ⊙ (h W_nᵀ + b_n)),
    h' = (1 − z) ⊙ n + z ⊙ h (PyTorch's GRU), stepped over packed suffixes."""

    @staticmethod
    def forward(ctx, state, inputs, batch_sizes, w_hh_t, w_hh, b_hh):
        hidden = state.shape[1]
        rows_total = inputs.shape[0]
        gh = inputs.new_empty(rows_total, 3 * hidden)
        rz = inputs.new_empty(rows_total, 2 * hidden)
        n = inputs.new_empty(rows_total, hidden)
        h_minus_n = inputs.new_empty(rows_total, hidden)
        out = inputs.new_empty(rows_total, hidden)
        h = state
        for start, size in _steps(batch_sizes):
            rows = slice(start, start + size)
            h = h[:size]
            step_gh = torch.addmm(b_hh, h, w_hh_t, out=gh[rows])  # the step's one matmul
            step_rz = torch.sigmoid_(torch.add(inputs[rows, : 2 * hidden], step_gh[:, : 2 * hidden], out=rz[rows]))
            step_n = torch.tanh_(
                torch.addcmul(inputs[rows, 2 * hidden :], step_rz[:, :hidden], step_gh[:, 2 * hidden :], out=n[rows])
            )
            if ctx.needs_input_grad[0]:
                torch.sub(h, step_n, out=h_minus_n[rows])
            h = torch.lerp(step_n, h, step_rz[:, hidden:], out=out[rows])  # (1 − z) n + z h
        if not ctx.needs_input_grad[0]:  # evaluation: no backward will come
            return out
        # d(gh)/dh_t = dh_t ⊙ factors (one block per gate), for every step at once, in place
        r, z = rz[:, :hidden], rz[:, hidden:]
        factors = inputs.new_empty(rows_total, 3 * hidden)
        d_r, d_z, d_n = factors[:, :hidden], factors[:, hidden : 2 * hidden], factors[:, 2 * hidden :]
        one_minus_z = torch.rsub(z, 1)
        torch.mul(torch.rsub(n * n, 1), one_minus_z, out=d_n)  # through n: (1 − z)(1 − n²)
        torch.mul(torch.addcmul(r, r, r, value=-1).mul_(gh[:, 2 * hidden :]), d_n, out=d_r)  # … r(1 − r) gh_n
        torch.mul(torch.addcmul(z, z, z, value=-1), h_minus_n, out=d_z)  # z(1 − z)(h − n)
        d_n.mul_(r)
        ctx.batch_sizes = batch_sizes
        ctx.save_for_backward(factors, z, w_hh)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        factors, z, w_hh = ctx.saved_tensors
        hidden = z.shape[1]
        carry = None
        for start, size in reversed(_steps(ctx.batch_sizes)):
            rows = slice(start, start + size)
            dh = _plus_carry(grad_out[rows], carry)
            d_gh = (dh.unsqueeze(1) * factors[rows].view(size, 3, hidden)).view(size, 3 * hidden)
            carry = torch.addmm(dh * z[rows], d_gh, w_hh)  # dh_prev = dh ⊙ z + d(gh) W_hh
        return carry, None, None, None, None, None


class _LSTMSuffix(torch.autograd.Function):
    """i, f, o = σ(·), g = tanh(·) of x_t + h W_hhᵀ + b_hh; c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c')
    (PyTorch's LSTM), stepped over packed suffixes from the site [h; c]."""

    @staticmethod
    def forward(ctx, state, inputs, batch_sizes, w_hh_t, w_hh, b_hh):
        hidden = state.shape[1] // 2
        rows_total = inputs.shape[0]
        acts = inputs.new_empty(rows_total, 4 * hidden)  # σ(i), σ(f), tanh(g), σ(o)
        f_c = inputs.new_empty(rows_total, hidden)  # f ⊙ c (the forget gate's share of c')
        c_tanh = inputs.new_empty(rows_total, hidden)
        out = inputs.new_empty(rows_total, hidden)
        h, c = state[:, :hidden], state[:, hidden:]
        for start, size in _steps(batch_sizes):
            rows = slice(start, start + size)
            act = torch.addmm(b_hh, h[:size], w_hh_t, out=acts[rows]).add_(inputs[rows])  # the one matmul
            i, f, g, o = act.chunk(4, 1)
            torch.sigmoid_(act[:, : 2 * hidden]), torch.tanh_(g), torch.sigmoid_(o)
            c = torch.addcmul(torch.mul(f, c[:size], out=f_c[rows]), i, g)
            h = torch.mul(o, torch.tanh(c, out=c_tanh[rows]), out=out[rows])
        if not ctx.needs_input_grad[0]:  # evaluation: no backward will come
            return out
        # d(gates)/d(h_t, c_t), for every step at once, in place
        i, f, g, o = acts.chunk(4, 1)
        factors = inputs.new_empty(rows_total, 4 * hidden)
        d_i, d_f, d_g, d_o = factors.chunk(4, 1)
        torch.mul(torch.addcmul(i, i, i, value=-1), g, out=d_i)  # g i(1 − i)
        torch.mul(torch.rsub(f, 1), f_c, out=d_f)  # c f(1 − f)
        torch.mul(torch.rsub(g * g, 1), i, out=d_g)  # i (1 − g²)
        torch.mul(torch.addcmul(o, o, o, value=-1), c_tanh, out=d_o)  # tanh(c') o(1 − o)
        through_c = torch.rsub(c_tanh * c_tanh, 1).mul_(o)  # o (1 − tanh²(c'))
        ctx.batch_sizes = batch_sizes
        ctx.save_for_backward(factors, through_c, f.contiguous(), w_hh)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        factors, through_c, forget, w_hh = ctx.saved_tensors
        hidden = forget.shape[1]
        carry_h = carry_c = None
        for start, size in reversed(_steps(ctx.batch_sizes)):
            rows = slice(start, start + size)
            dh = _plus_carry(grad_out[rows], carry_h)
            dc = dh * through_c[rows]
            if carry_c is not None:
                dc[: len(carry_c)] += carry_c
            # gate inputs i, f, g are driven by dc, o by dh
            driver = torch.stack([dc, dc, dc, dh], 1)
            d_gates = (driver * factors[rows].view(size, 4, hidden)).view(size, 4 * hidden)
            carry_h, carry_c = d_gates @ w_hh, dc * forget[rows]  # dh_prev, dc_prev
        return torch.cat([carry_h, carry_c], 1), None, None, None, None, None
