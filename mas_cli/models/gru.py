"""GRU next-token model (docs/METHODS.md § Models and training): embedding -> one GRU layer -> readout MLP.

The hidden site is the GRU state h after each token, so continuing from an intervened state is
just running the fused `nn.GRU` kernel over the rest of the sequence with h as its initial state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mas_cli.models.base import Readout, RecurrentModel, StepCell, check_readout


@dataclass
class GRUConfig:
    vocab_size: int
    width: int  # embedding and hidden width
    readout_mult: int  # the readout MLP's hidden width, in multiples of width
    dropout: float  # the readout's

    check = staticmethod(check_readout)


class GRUModel(RecurrentModel):
    Config = GRUConfig

    def __init__(self, config: GRUConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.embedding = nn.Embedding(config.vocab_size, w)
        self.rnn = nn.GRU(w, w, batch_first=True)
        self.cell = StepCell(self.rnn)  # the hidden site, one step at a time (forward)
        self.readout = Readout(w, config.readout_mult * w, config.vocab_size, config.dropout)

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.features(tokens)  # [B, L, W]: the readout sees exactly the state we align

    def initial_state(self, state: torch.Tensor) -> torch.Tensor:
        return state[None].contiguous()  # [1, B, W]: one layer

    def state_features(self, state: torch.Tensor) -> torch.Tensor:
        return state
