"""The straightforward interchange intervention, for tests and as the benchmark's baseline: run
both frozen models from position 0 with a per-step loop, swap at τ inside the loop, and read out
at every position. `intervention.predictions` must agree with it wherever a label is scored.
"""

from __future__ import annotations

import torch
from torch import nn

from mas_cli.align.functions import AlignedRows
from mas_cli.align.intervention import swap
from mas_cli.models import SequenceModel
from mas_cli.models.gru import GRUModel
from mas_cli.models.lstm import LSTMModel


class SiteCell(nn.Module):
    """One recurrent step on the hidden site: state [B, D] -> state [B, D] (LSTM: D = [h; c]),
    sharing the model's own weights."""

    def __init__(self, model: SequenceModel):
        super().__init__()
        rnn = model.rnn
        kind = {GRUModel: nn.GRUCell, LSTMModel: nn.LSTMCell}[type(model)]
        self.cell = kind(rnn.input_size, rnn.hidden_size)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(self.cell, name, getattr(rnn, f"{name}_l0"))
        self.is_lstm = isinstance(model, LSTMModel)

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        if self.is_lstm:
            h, c = self.cell(x, state.chunk(2, dim=-1))
            return torch.cat([h, c], -1)
        return self.cell(x, state)

    def readout_input(self, state: torch.Tensor) -> torch.Tensor:
        return state.chunk(2, dim=-1)[0] if self.is_lstm else state  # the LSTM readout sees h


def unrolled_states(model: SequenceModel, tokens: torch.Tensor) -> torch.Tensor:
    """Hidden site at every position [B, L, D], one step at a time (transformers: one pass)."""
    if not hasattr(model, "rnn"):
        return model.hidden_states(tokens)
    cell, embedded = SiteCell(model), model.embed(tokens)
    state = embedded.new_zeros(len(tokens), model.site_width("hidden"))
    states = []
    for t in range(tokens.shape[1]):
        state = cell(embedded[:, t], state)
        states.append(state)
    return torch.stack(states, 1)


def reference_logits(
    target: SequenceModel,
    source: SequenceModel,
    tokens: torch.Tensor,
    tau: torch.Tensor,
    source_tokens: torch.Tensor,
    sigma: torch.Tensor,
    target_aligned: AlignedRows,
    source_aligned: AlignedRows,
) -> torch.Tensor:
    """Logits [B, L, V] of the target on `tokens` with its hidden site at τ swapped (hidden site)."""
    h_source = unrolled_states(source, source_tokens)[torch.arange(len(tokens)), sigma]
    if not hasattr(target, "rnn"):  # transformer: patch the residual at τ, run the whole model
        residuals = target.hidden_states(tokens)
        h_target = residuals[torch.arange(len(tokens)), tau]
        state = swap(h_target, h_source, target_aligned, source_aligned)
        return target.continue_from(state, tokens, tau)
    cell, embedded = SiteCell(target), target.embed(tokens)
    state = embedded.new_zeros(len(tokens), target.site_width("hidden"))
    features = []
    for t in range(tokens.shape[1]):
        state = cell(embedded[:, t], state)
        at_tau = (tau == t)[:, None]
        if at_tau.any():
            state = torch.where(at_tau, swap(state, h_source, target_aligned, source_aligned), state)
        features.append(cell.readout_input(state))
    return target.readout(torch.stack(features, 1))
