"""LSTM next-token model (docs/METHODS.md § Models and training): embedding -> one LSTM layer (h and c
of width/2 each) -> readout MLP on h. The hidden site is the concatenation [h; c], `width` wide, because the cell
state carries information h alone does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mas_cli.config import require
from mas_cli.models.base import Readout, RecurrentModel, StepCell, check_readout


@dataclass
class LSTMConfig:
    vocab_size: int
    width: int  # embedding width and width of the [h; c] site; h and c are width/2
    readout_mult: int  # the readout MLP's hidden width, in multiples of width
    dropout: float  # the readout's

    @staticmethod
    def check(settings) -> None:
        check_readout(settings)
        even = settings.width % 2 == 0
        require(even, f"arch.width must be even for lstm (h and c are width/2), got {settings.width}")


class LSTMModel(RecurrentModel):
    Config = LSTMConfig

    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.embedding = nn.Embedding(config.vocab_size, w)
        self.rnn = nn.LSTM(w, w // 2, batch_first=True)
        self.cell = StepCell(self.rnn)  # the hidden site, one step at a time (forward)
        self.readout = Readout(w // 2, config.readout_mult * w, config.vocab_size, config.dropout)

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        """[h; c] at every position, [B, L, W].

        The fused kernel returns h for every step but c only for the last, so c is rebuilt:
        with h_{t-1} known, all gates come from one batched matmul, and c_t = f_t c_{t-1} + i_t g_t
        is a cheap elementwise recurrence (no per-step matmul)."""
        x = self.embedding(tokens)
        h, _ = self.rnn(x)
        h_prev = torch.cat([h.new_zeros(h[:, :1].shape), h[:, :-1]], 1)
        gates = x @ self.rnn.weight_ih_l0.T + h_prev @ self.rnn.weight_hh_l0.T
        gates = gates + self.rnn.bias_ih_l0 + self.rnn.bias_hh_l0
        i, f, g, _ = gates.chunk(4, dim=-1)  # PyTorch's gate order: input, forget, cell, output
        i, f, g = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g)
        cells, c = [], h.new_zeros(h[:, 0].shape)
        for t in range(tokens.shape[1]):
            c = f[:, t] * c + i[:, t] * g[:, t]
            cells.append(c)
        return torch.cat([h, torch.stack(cells, 1)], -1)

    def initial_state(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state.chunk(2, dim=-1)  # the site is [h; c]
        return h[None].contiguous(), c[None].contiguous()

    def state_features(self, state: torch.Tensor) -> torch.Tensor:
        return state.chunk(2, dim=-1)[0]  # the readout sees h
