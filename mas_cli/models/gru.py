"""GRU next-token model (SPEC §4): embedding -> one GRU layer -> readout MLP.

The hidden site is the GRU state h after each token, so continuing from an intervened state is
just running the fused `nn.GRU` kernel over the rest of the sequence with h as its initial state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mas_cli.models.base import Readout, SequenceModel, gather_suffixes, scatter_suffix_logits


@dataclass
class GRUConfig:
    vocab_size: int
    width: int = 128  # embedding and hidden width (paper default)
    readout_mult: int = 4
    dropout: float = 0.5


class GRUModel(SequenceModel):
    def __init__(self, config: GRUConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.embedding = nn.Embedding(config.vocab_size, w)
        self.rnn = nn.GRU(w, w, batch_first=True)
        self.readout = Readout(w, config.readout_mult * w, config.vocab_size, config.dropout)

    def site_width(self, site: str) -> int:
        return self.config.width

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embedding(tokens)  # [B, L, W]

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.rnn(self.embedding(tokens))[0]  # [B, L, W]

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.features(tokens)  # the readout sees exactly the state we align

    def logits_from_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.readout(self.rnn(embeddings)[0])

    def continue_suffix(self, state: torch.Tensor, suffix: torch.Tensor) -> torch.Tensor:
        """state [B, W] at τ, suffix [B, S] = tokens after τ -> logits [B, 1 + S, V]:
        the prediction made at τ, then one after each suffix token."""
        out, _ = self.rnn(self.embedding(suffix), state[None].contiguous())
        return self.readout(torch.cat([state[:, None], out], 1))

    def continue_from(self, state: torch.Tensor, tokens: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        suffix, _ = gather_suffixes(tokens, tau)
        logits = self.continue_suffix(state, suffix)
        return scatter_suffix_logits(logits[:, 0], logits[:, 1:], tau, tokens.shape[1])
