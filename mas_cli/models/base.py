"""What every model in the zoo shares: the readout MLP and the site protocol.

Every model is an autoregressive next-token predictor, `forward(tokens) -> logits [B, L, V]`,
with two named alignment sites, each a module of the model (`site_paths`):

    embed   the input embedding at each position, [B, L, D]
    hidden  an RNN's state after each token (its step cell's output, one call per position), a
            transformer's residual stream after `hidden_layer` layers, [B, L, D]

Alignment reaches any site generically, with forward hooks on its module (continuation/hooks.py),
so `forward` is the plain definition a hook can follow: an RNN steps through its `cell`. For
speed, every model also offers its readout on the features of a whole batch:

    features(tokens)          [B, L, F]  what the readout sees at each position (fused kernels)
    readout(features)         [..., V]   logits; applied only where a prediction is scored

which training and task accuracy use, and the zoo's fast alignment paths
(continuation/recurrent.py, continuation/transformer.py) build on; each is tested equal to the
generic path.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from mas_cli.config import number_in, positive_int

SITES = ("embed", "hidden")  # the site names every zoo model defines
STACK_NAMES = ("layers", "h", "blocks", "layer")  # what decoder stacks are called, most common first


def layer_stack(root: nn.Module) -> str | None:
    """The path of a model's stack of decoder layers: the longest nn.ModuleList whose items are
    all of one class (ties: the usual names first)."""
    found = []
    for path, module in root.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) and len({type(m) for m in module}) == 1:
            name = path.rsplit(".", 1)[-1]
            rank = STACK_NAMES.index(name) if name in STACK_NAMES else len(STACK_NAMES)
            found.append((-len(module), rank, path))
    return min(found)[2] if found else None


def device_of(model: nn.Module) -> torch.device:
    """Where a model lives: its first parameter's device, else its first buffer's (a hand-built
    module may hold only buffers), else the CPU."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def module_path(root: nn.Module, module: nn.Module) -> str:
    """The path of `module` inside `root` (as `root.named_modules()` names it)."""
    return next(path for path, found in root.named_modules() if found is module)


def check_readout(settings) -> None:
    """What every zoo model's config shares: its width, the readout MLP, its dropout, and the
    gradient clipping training applies to it."""
    positive_int(settings.get("width"), "arch.width")
    positive_int(settings.get("readout_mult"), "arch.readout_mult")
    number_in(settings.get("dropout"), "arch.dropout", 0, 1, "[0, 1)")
    number_in(settings.get("grad_clip", 0.0), "arch.grad_clip", 0, float("inf"), "[0, inf); 0 turns clipping off")


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
    """Base class: `forward` is the plain definition (what hooks see); subclasses implement the rest."""

    config: object
    embedding: nn.Embedding
    readout: Readout

    def site_paths(self) -> dict[str, str]:
        """Each named site's module path."""
        raise NotImplementedError

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embedding(tokens)  # [B, L, W]

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.readout(self.features(tokens))


class StepCell(nn.Module):
    """One step of a model's single-layer nn.GRU / nn.LSTM on the hidden site: (input [B, E],
    state [B, D]) -> state [B, D], the LSTM's state being [h; c]. It holds no weights of its own:
    it reads the RNN's, so the state_dict is the RNN's alone."""

    def __init__(self, rnn: nn.RNNBase):
        super().__init__()
        self._rnn = (rnn,)  # a tuple: not a second registration of the RNN's parameters
        self.lstm = isinstance(rnn, nn.LSTM)

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        rnn = self._rnn[0]
        weights = (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
        if self.lstm:
            h, c = torch.lstm_cell(x, tuple(state.chunk(2, dim=-1)), *weights)
            return torch.cat([h, c], -1)
        return torch.gru_cell(x, state, *weights)


class RecurrentModel(SequenceModel):
    """What the GRU and LSTM share: embedding -> `self.rnn` (batch_first) -> readout. `forward`
    steps through `self.cell`, so the hidden site is the cell's output after each token;
    `features` runs the same recurrence in the fused kernel."""

    rnn: nn.RNNBase
    cell: StepCell

    def site_paths(self) -> dict[str, str]:
        return {"embed": "embedding", "hidden": "cell"}

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits [B, L, V], one step at a time: the hidden site is `cell`'s output after each token."""
        inputs = self.embedding(tokens)
        state = inputs.new_zeros(len(tokens), self.site_width())
        readout_inputs = []
        for t in range(tokens.shape[1]):
            state = self.cell(inputs[:, t], state)
            readout_inputs.append(self.state_features(state))
        return self.readout(torch.stack(readout_inputs, 1))

    def site_width(self) -> int:
        """The hidden site's width: h, or [h; c]."""
        return self.rnn.hidden_size * (2 if isinstance(self.rnn, nn.LSTM) else 1)

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

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
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
