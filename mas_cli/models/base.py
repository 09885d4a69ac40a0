"""What every model in the zoo shares: the readout MLP and the alignment-site protocol.

Every model is an autoregressive next-token predictor with two alignment sites (SPEC §4):

    embed   the input embedding at each position           [B, L, site_width("embed")]
    hidden  RNN state after each token / transformer
            residual stream after layer 1                  [B, L, site_width("hidden")]

and offers, over a whole batch:

    features(tokens)          [B, L, F]  what the readout sees at each position
    readout(features)         [..., V]   logits; applied only where a prediction is scored
    hidden_states(tokens)     [B, L, D]  the hidden site at every position, in one call
    features_from_embeddings(e)
                              [B, L, F]  the model run on given input embeddings (embed site)

The alignment engine (alignment/sites.py) continues a target from an intervened hidden site with
each kind's own cheap path: RecurrentModel.run_packed over the tokens after τ (from the state,
via initial_state / state_features), TransformerModel.scored_features_above_site over stored
residuals. The plain per-step reference it is tested against is alignment/reference.py.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

SITES = ("embed", "hidden")


class Dropout(nn.Dropout):
    """nn.Dropout with its mask drawn as `uniform >= p`: the same distribution (each unit kept with
    probability 1 − p, scaled by 1 / (1 − p)), but torch's CPU `bernoulli_` draws ~4× slower than
    `rand_like`, and on the readout's [rows, 4·width] activations that was a fifth of a training
    step (docs/BENCHMARKS.md)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return torch.zeros_like(x)
        return x * (torch.rand_like(x) >= self.p).to(x.dtype).mul_(1 / (1 - self.p))


class Readout(nn.Module):
    """width -> mult·width -> GELU -> dropout -> vocab (paper default: mult 4, dropout 0.5)."""

    def __init__(self, in_width: int, hidden_width: int, vocab_size: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_width, hidden_width),
            nn.GELU(),
            Dropout(dropout),
            nn.Linear(hidden_width, vocab_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SequenceModel(nn.Module):
    """Base class: `forward` is features + readout; subclasses implement the rest."""

    config: object
    embedding: nn.Embedding
    readout: Readout

    def site_width(self, site: str) -> int:
        return self.config.width  # both sites are `width` wide in every model of the zoo

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embedding(tokens)  # [B, L, W]

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def features_from_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.readout(self.features(tokens))


class RecurrentModel(SequenceModel):
    """What the GRU and LSTM share: embedding -> `self.rnn` (batch_first) -> readout, with the
    hidden site continued by running the fused kernel over the suffix only."""

    rnn: nn.RNNBase

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.rnn(self.embedding(tokens))[0]  # the RNN output at every position

    def features_from_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.rnn(embeddings)[0]

    def initial_state(self, state: torch.Tensor):
        """The hidden site [B, D] as the RNN's initial state (`hx`)."""
        raise NotImplementedError

    def state_features(self, state: torch.Tensor) -> torch.Tensor:
        """What the readout sees when the hidden site is `state`: [B, F]."""
        raise NotImplementedError

    def state_after(self, tokens: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        """The hidden site after reading tokens[b, :at[b] + 1], [B, D]: the prefixes are packed
        and only the RNN's final states are kept (no step past a row's position, no readout)."""
        prefixes = pack_padded_sequence(self.embed(tokens), (at + 1).cpu(), batch_first=True, enforce_sorted=False)
        _, final = self.rnn(prefixes)
        final = final if isinstance(final, tuple) else (final,)  # LSTM: (h, c) -> the site [h; c]
        return torch.cat([part[0] for part in final], -1)

    def run_packed(self, inputs: PackedSequence, state: torch.Tensor | None = None) -> torch.Tensor:
        """Readout inputs after each step of packed input embeddings, in the packed layout
        [sum of lengths, F] (no step is spent on padding), from `state` [B, D] (sorted like
        the packed rows) or from zeros."""
        return self.rnn(inputs, None if state is None else self.initial_state(state))[0].data
