"""The language-model case (`data=continuation`, docs/DATA.md § Continuations): no causal model,
only the models' own behaviour.

Each model continues each prompt greedily for `data.new_tokens` tokens, once; the continuations
are a store entry of their own (`<root>/continuations/<model>/<key>`, keyed by the model's
weight digest, the texts' digest and the length), so every fit over the same texts reuses them.
An item of direction s → t is a prompt and a position τ, drawn uniformly from the positions
whose next token is one of the source's continuation tokens:

    input     prompt + the source's continuation, up to τ + 1 (both models read these tokens)
    swap      the source's site at τ into the target's at τ (site=embed: every position up to τ)
    label     the source's next token, at τ
    iia_none  how often the target, left alone, already predicts the source's token

so IIA is the target's accuracy on the source's own next token after the swap: the paper's token
accuracy, one token per item, which keeps items independent for the Wilson interval. Train and
validation items come from disjoint prompts (every fifth line validates). The two models must
tokenise every prompt alike; otherwise one line says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mas_cli import store
from mas_cli.console import path_line
from mas_cli.data.texts import TextTask, is_validation, read_texts
from mas_cli.errors import ConfigError, StoreError
from mas_cli.models.base import device_of
from mas_cli.tasks import Counterfactuals
from mas_cli.tasks.base import right_padded
from mas_cli.tasks.vocab import PAD

FORMAT = "mas-continuations/1"
BATCH = 64  # prompts continued per forward pass: memory only


def with_texts(cfg, models: list) -> list:
    """The fit's models reading the prompts of data.texts (their task's natural sequences);
    each must be a language model with a tokenizer, all tokenising the prompts alike."""
    texts = read_texts(Path(cfg.data.texts).expanduser())
    for m in models:
        if not isinstance(m.task, TextTask):
            raise ConfigError(
                f"data=continuation needs language models with a tokenizer: {m.spec.label} has none; "
                "give hf:<dir> or mas.wrap(..., tokenizer=...)"
            )
    found = [replace(m, task=m.task.reading(texts), _continuations={}) for m in models]
    first = found[0]
    for m in found:
        empty = next((i for i, ids in enumerate(m.task.encoded) if not ids), None)
        if empty is not None:
            raise ConfigError(f"data.texts prompt {empty + 1} has no tokens for {m.spec.label}; drop it")
        differ = next((i for i, (a, b) in enumerate(zip(first.task.encoded, m.task.encoded)) if a != b), None)
        if differ is not None:
            raise ConfigError(
                f"{first.spec.label} and {m.spec.label} tokenise prompt {differ + 1} differently; "
                "data=continuation needs models that share a tokenizer"
            )
    return found


def continuation_source(cfg, models: list):
    """The `draw` of data=continuation (models: as with_texts returns them)."""
    root, n_new = cfg.paths.root, cfg.data.new_tokens
    device = device_of(models[0].model)
    made = {}  # model index -> its continuations, computed (or read) when a direction first needs them

    def continued(model) -> list[list[int]]:
        if id(model) not in made:
            made[id(model)] = continuations(model, n_new, root, device)
        return made[id(model)]

    def draw(source, target, variable: str, n: int, rng, split: str) -> Counterfactuals:
        prompts = [i for i in range(len(source.task.encoded)) if is_validation(i) == (split == "val")]
        picked = rng.choice(prompts, size=n)
        offsets = rng.integers(n_new, size=n)  # τ = len(prompt) - 1 + offset: next token = continuation[offset]
        sequences = [source.task.encoded[p] + continued(source)[p] for p in picked]
        tau = np.array([len(source.task.encoded[p]) - 1 + o for p, o in zip(picked, offsets)], dtype=np.int64)
        tokens = right_padded([seq[: t + 2] for seq, t in zip(sequences, tau)])  # up to the label at τ + 1
        full = right_padded(sequences)
        mask = np.zeros(tokens.shape, dtype=bool)
        mask[np.arange(n), tau] = True
        return Counterfactuals(tokens, mask, full, full, tau, tau.copy(), variable, {}, {})

    return draw


def continuations(model, new_tokens: int, root, device) -> list[list[int]]:
    """The model's greedy continuation of each prompt: from its store entry, or computed once."""
    key = hashlib.sha256(f"{model.weights}|{_texts_digest(model.task)}|{new_tokens}".encode()).hexdigest()[:20]
    entry = store.Entry(Path(root) / "continuations" / model.spec.slug / key, redo="delete it", root=root)

    def build(work: Path) -> list[str]:
        found = greedy(model, new_tokens, device)
        payload = {"format": FORMAT, "weights": model.weights, "new_tokens": new_tokens, "continuations": found}
        store.write_json(work / "continuations.json", payload)
        return ["continuations.json"]

    folder = entry.made_once(build, lambda: path_line("waiting: another job is continuing the prompts", entry.path))
    return _checked(store.read_json(folder / "continuations.json", f"delete {entry.path}"), model, new_tokens, entry)


def _texts_digest(task: TextTask) -> str:
    return hashlib.sha256("\n".join(task.texts).encode()).hexdigest()


def _checked(payload: dict, model, new_tokens: int, entry) -> list[list[int]]:
    """A stored file is untrusted: exactly this model's continuations of these prompts, or refused."""
    found = payload.get("continuations")
    size = len(model.task.vocab)
    fits = (
        payload.get("format") == FORMAT
        and payload.get("weights") == model.weights
        and isinstance(found, list)
        and len(found) == len(model.task.encoded)
        and all(isinstance(c, list) and len(c) == new_tokens for c in found)
        and all(isinstance(i, int) and 0 <= i < size for c in found for i in c)
    )
    if not fits:
        raise StoreError(f"{entry.path} does not hold {model.spec.label}'s continuations; delete it")
    return found


@torch.no_grad()
def greedy(model, new_tokens: int, device) -> list[list[int]]:
    """Each prompt continued by the model's most likely next token, `new_tokens` times. Prompts
    are right-padded in a batch: a causal model's predictions at real positions do not see
    the padding after them. The model is a wrapped one (wrapped.py): its readout, a language
    model's head where it is split off, runs only at the positions read."""
    out = []
    for first in range(0, len(model.task.encoded), BATCH):
        prompts = model.task.encoded[first : first + BATCH]
        lengths = torch.tensor([len(p) for p in prompts], device=device)
        tokens = torch.full((len(prompts), int(lengths.max()) + new_tokens), PAD, dtype=torch.long, device=device)
        for row, ids in enumerate(prompts):
            tokens[row, : len(ids)] = torch.tensor(ids)
        rows = torch.arange(len(prompts), device=device)
        for _ in range(new_tokens):  # the head (readout) only at each prompt's last token
            features = model.model.features(tokens[:, : int(lengths.max())])
            tokens[rows, lengths] = model.model.readout(features[rows, lengths - 1]).argmax(-1)
            lengths = lengths + 1
        out += [tokens[row, len(ids) : len(ids) + new_tokens].tolist() for row, ids in enumerate(prompts)]
    return out
