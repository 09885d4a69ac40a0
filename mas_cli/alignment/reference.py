"""The straightforward interchange intervention, for tests and as the benchmark's baseline: the
formula through the full alignment space, and both frozen models run from position 0 with a
per-step loop, the swap made at τ inside the loop, the readout at every position. The engine's
fast paths (alignment/sites.py) must agree with these wherever a label is scored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mas_cli.alignment.functions import AlignedRows
from mas_cli.alignment.intervention import swap
from mas_cli.models import SequenceModel
from mas_cli.models.gru import GRUModel
from mas_cli.models.lstm import LSTMModel


def interchange(h_target, h_source, a_target, a_source, k: int, keep_target: bool = True):
    """The formula as written, through the full alignment space: A_t⁻¹((1 − M_k) ⊙ A_t(h_t) +
    M_k ⊙ A_s(h_s)); keep_target=False is stitching's zero mask (the first term dropped)."""
    z_target, z_source = a_target(h_target), a_source(h_source)
    mask = torch.zeros(z_target.shape[-1], dtype=z_target.dtype, device=z_target.device)
    mask[:k] = 1
    z_source = F.pad(z_source, (0, max(z_target.shape[-1] - z_source.shape[-1], 0)))
    kept = (1 - mask) * z_target if keep_target else torch.zeros_like(z_target)
    return a_target.inverse(kept + mask * z_source[..., : z_target.shape[-1]])


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


def is_recurrent(model: SequenceModel) -> bool:
    return hasattr(model, "rnn")


def unrolled_states(model: SequenceModel, tokens: torch.Tensor) -> torch.Tensor:
    """Hidden site at every position [B, L, D], one step at a time (transformers: one pass)."""
    if not is_recurrent(model):
        return model.hidden_states(tokens)
    cell, embedded = SiteCell(model), model.embed(tokens)
    state = embedded.new_zeros(len(tokens), model.site_width("hidden"))
    states = []
    for t in range(tokens.shape[1]):
        state = cell(embedded[:, t], state)
        states.append(state)
    return torch.stack(states, 1)


def continue_from(model: SequenceModel, state: torch.Tensor, tokens: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Logits [B, L, V] of `model` on `tokens` when its hidden site at tau[b] is replaced by
    state[b] (valid at positions ≥ tau[b]): an RNN stepped from position 0, a transformer with
    the residual at τ patched and every layer above the site run again."""
    if not is_recurrent(model):
        return model.readout(model.features_above_site(state, model.hidden_states(tokens), tau))
    cell, embedded = SiteCell(model), model.embed(tokens)
    h = embedded.new_zeros(len(tokens), model.site_width("hidden"))
    features = []
    for t in range(tokens.shape[1]):
        h = cell(embedded[:, t], h)
        h = torch.where((tau == t)[:, None], state, h)
        features.append(cell.readout_input(h))
    return model.readout(torch.stack(features, 1))


def logits_from_embeddings(model: SequenceModel, embeddings: torch.Tensor) -> torch.Tensor:
    """Logits [B, L, V] of `model` run on given input embeddings (the embed site's reference)."""
    return model.readout(model.features_from_embeddings(embeddings))


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
    rows = torch.arange(len(tokens))
    h_source = unrolled_states(source, source_tokens)[rows, sigma]
    h_target = unrolled_states(target, tokens)[rows, tau]
    return continue_from(target, swap(h_target, h_source, target_aligned, source_aligned), tokens, tau)
