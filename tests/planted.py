"""A hand-built recurrent model with a known code: the Up-Down count lives in one rotated direction.

Latent z (width 4) = [count, #D0 seen, #void-or-D1 seen · 2, position]; the hidden state is
h = R z for a fixed rotation R. Each token adds a fixed vector to z (demo tokens +1 count,
R −1 count), so the model follows the Up-Down causal model exactly. The readout says R while
count > 0.5 and EOS otherwise. The three distractor coordinates vary from sequence to sequence,
so only the count direction itself can carry a count swap without changing behaviour.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from mas_cli.models.base import RecurrentModel
from tasks import CountingTask

WIDTH = 4


class CountReadout(nn.Module):
    def __init__(self, rotation: torch.Tensor, vocab_size: int, response: int, eos: int):
        super().__init__()
        self.register_buffer("count_direction", rotation[:, 0].clone())
        self.vocab_size, self.response, self.eos = vocab_size, response, eos

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        count = h @ self.count_direction
        logits = torch.full((*h.shape[:-1], self.vocab_size), -20.0, dtype=h.dtype)
        logits[..., self.response] = 8.0 * (count - 0.5)
        logits[..., self.eos] = 0.0
        return logits


class PlantedCounter(RecurrentModel):
    def __init__(self, task: CountingTask, seed: int):
        super().__init__()
        vocab = task.vocab
        generator = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(WIDTH, WIDTH, generator=generator, dtype=torch.float64))
        self.rotation = q.float()
        steps = torch.zeros(len(vocab), WIDTH)
        for name in ("D0", "D1", "D2", "V"):
            steps[vocab.id(name), 3] = 1.0  # position
        for name in ("D0", "D1", "D2"):
            steps[vocab.id(name), 0] = 1.0  # count
        steps[vocab.id("D0"), 1] = 1.0
        steps[vocab.id("D1"), 2] = 2.0
        steps[vocab.id("V"), 2] = 2.0
        steps[vocab.id("R"), 0] = -1.0
        steps[vocab.id("R"), 3] = 1.0
        self.step_in_site = nn.Embedding.from_pretrained(steps @ self.rotation.T)  # token -> R·δz
        self.readout = CountReadout(self.rotation, len(vocab), vocab.id("R"), vocab.id("EOS"))
        self.config = type("Config", (), {"width": WIDTH})()

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.step_in_site(tokens)

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embed(tokens).cumsum(1)  # h after each token: the sum of its steps

    def state_after(self, tokens: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        return self.hidden_states(tokens)[torch.arange(len(tokens)), at]

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.hidden_states(tokens)

    def state_features(self, state: torch.Tensor) -> torch.Tensor:
        return state

    def continue_features(self, state: torch.Tensor, suffix: torch.Tensor) -> torch.Tensor:
        return torch.cat([state[:, None], state[:, None] + self.embed(suffix).cumsum(1)], 1)

    def run_packed(self, inputs: PackedSequence, state: torch.Tensor | None = None) -> torch.Tensor:
        steps, lengths = pad_packed_sequence(inputs, batch_first=True)
        state = steps.new_zeros(len(steps), WIDTH) if state is None else state
        after = state[:, None] + steps.cumsum(1)
        return pack_padded_sequence(after, lengths, batch_first=True).data
