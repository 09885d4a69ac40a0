"""Hand-built recurrent models with a known code: each Up-Down variable lives in one rotated direction.

Latent z (width 5) = [count, phase, #D0 seen, #void-or-D1 seen · 2, position] (the count-only
model has no phase coordinate: width 4); the hidden state is
h = R z for a fixed rotation R. Each token adds a fixed vector to z (demo tokens +1 count, R −1
count, T +1 phase), so the model follows the Up-Down causal model exactly. The three distractor
coordinates vary from sequence to sequence, so only a variable's own direction can carry its swap
without changing behaviour.

Two readouts. `CountReadout` says R while count > 0.5 and EOS otherwise, whatever the phase: a
count-only model, for which a phase swap is free. `PhaseReadout` also needs the phase: in the
demo phase it says a demo token, in the response phase R or EOS by the count, so a phase swap into
the response phase is only right if the phase direction moved.
"""

from __future__ import annotations

import torch
from torch import nn

from mas_cli.models.base import SequenceModel
from mas_cli.tasks import CountingTask

WIDTH = 5
COUNT, PHASE = 0, 1  # latent coordinates of the two variables
PHASE_STEP = 10.0


class CountReadout(nn.Module):
    def __init__(self, rotation: torch.Tensor, vocab_size: int, response: int, eos: int):
        super().__init__()
        self.register_buffer("count_direction", rotation[:, COUNT].clone())
        self.vocab_size, self.response, self.eos = vocab_size, response, eos

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        count = h @ self.count_direction
        logits = torch.full((*h.shape[:-1], self.vocab_size), -20.0, dtype=h.dtype)
        logits[..., self.response] = 8.0 * (count - 0.5)
        logits[..., self.eos] = 0.0
        return logits


class PhaseReadout(nn.Module):
    """log p(demo token) = log σ(−a(phase − ½)); log p(R | response) = log σ(b(count − ½)).
    Logits are these log-probabilities, smooth in both directions so that alignments train."""

    def __init__(self, rotation: torch.Tensor, vocab_size: int, tokens: tuple[int, int, int]):
        super().__init__()
        self.register_buffer("count_direction", rotation[:, COUNT].clone())
        self.register_buffer("phase_direction", rotation[:, PHASE].clone())
        self.vocab_size, (self.demo, self.response, self.eos) = vocab_size, tokens

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        respond = 12.0 / PHASE_STEP * (h @ self.phase_direction - PHASE_STEP / 2)
        more = 8.0 * (h @ self.count_direction - 0.5)
        logits = torch.full((*h.shape[:-1], self.vocab_size), -30.0, dtype=h.dtype)
        logits[..., self.demo] = nn.functional.logsigmoid(-respond)
        logits[..., self.response] = nn.functional.logsigmoid(respond) + nn.functional.logsigmoid(more)
        logits[..., self.eos] = nn.functional.logsigmoid(respond) + nn.functional.logsigmoid(-more)
        return logits


class Accumulate(nn.Module):
    """The planted recurrence: the state after a token is the state before it plus the token's step."""

    def forward(self, step: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return state + step


class PlantedCounter(SequenceModel):
    """A model of the generic kind (no fast path): its hidden site is `cell`'s output after each
    token, its embed site the step each token adds."""

    def __init__(self, task: CountingTask, seed: int, reads_phase: bool = False):
        super().__init__()
        vocab = task.vocab
        # The count-only model has no phase coordinate: a dead one would make its count direction
        # less identifiable than the test of it wants (see the module docstring).
        width = WIDTH if reads_phase else WIDTH - 1
        d0, d1_or_void, position = range(width - 3, width)
        generator = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(width, width, generator=generator, dtype=torch.float64))
        self.rotation = q.float()
        steps = torch.zeros(len(vocab), width)
        for name in ("D0", "D1", "D2", "V", "R"):
            steps[vocab.id(name), position] = 1.0
        for name in ("D0", "D1", "D2"):
            steps[vocab.id(name), COUNT] = 1.0
        steps[vocab.id("R"), COUNT] = -1.0
        if reads_phase:
            steps[vocab.id("T"), PHASE] = PHASE_STEP
        steps[vocab.id("D0"), d0] = 1.0
        steps[vocab.id("D1"), d1_or_void] = 2.0
        steps[vocab.id("V"), d1_or_void] = 2.0
        self.step_in_site = nn.Embedding.from_pretrained(steps @ self.rotation.T)  # token -> R·δz
        if reads_phase:
            self.readout = PhaseReadout(self.rotation, len(vocab), (vocab.id("D0"), vocab.id("R"), vocab.id("EOS")))
        else:
            self.readout = CountReadout(self.rotation, len(vocab), vocab.id("R"), vocab.id("EOS"))
        self.cell = Accumulate()
        self.width = width

    def site_paths(self) -> dict[str, str]:
        return {"hidden": "cell", "embed": "step_in_site"}

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        steps = self.step_in_site(tokens)
        state, states = steps.new_zeros(len(tokens), self.width), []
        for t in range(tokens.shape[1]):
            state = self.cell(steps[:, t], state)
            states.append(state)
        return self.readout(torch.stack(states, 1))

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.step_in_site(tokens).cumsum(1)  # h after each token: the sum of its steps
