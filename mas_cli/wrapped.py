"""Any torch module as a model `mas.align` accepts beside the zoo's (`mas.wrap`).

The module must do what every zoo model does: map token ids [B, L] of a task's vocabulary to
next-token logits [B, L, V]. A HuggingFace causal LM (any `PreTrainedModel` whose vocabulary is
the task's) is called with the attention mask and positions said outright and read through its
output's `logits`. Alignment reaches it by the generic path alone (forward hooks on
the named module, continuation/generic.py), so nothing else is asked of it:

    import mas_cli as mas
    mine = mas.wrap(module, site="layers.1", task="count", name="mine")
    fit = mas.align(["gru:0", mine], root="outputs")

`site` (a module path, as `module.named_modules()` prints it) becomes the model's `hidden` site,
`embed` (optional) its `embed` site, so a fit's `site=hidden` reads each model where it should.
The handle holds a frozen copy of the module: changing the module afterwards changes nothing
already wrapped; wrap it again, and a stored fit of the old weights is refused (its weight digest
differs) until `force=True`. Its task accuracy is measured on the task's validation sequences
when it is wrapped (the report flags a model below the training criterion, as for the zoo's).
"""

from __future__ import annotations

import copy
import re

import numpy as np
import torch
from torch import nn

from mas_cli import seeds, store
from mas_cli.architectures import names
from mas_cli.composition import compose_config
from mas_cli.continuation.sites import resolve_site
from mas_cli.data.causal import CausalTask
from mas_cli.data.texts import TextTask
from mas_cli.errors import ConfigError
from mas_cli.evaluation import EvalSet, task_accuracy
from mas_cli.models.hf import padded_inputs
from mas_cli.specs import ModelSpec
from mas_cli.tasks import task_from_config
from mas_cli.zoo import FrozenModel

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# transformers families whose causal-LM logits are the output embedding over the base model's last
# hidden state, nothing after it (no soft-capping or logit scale): tests/test_padding.py checks each
PLAIN_HEADS = ("llama", "qwen2", "gpt2", "gpt_neox", "mistral")


class WrappedModule(nn.Module):
    """A user's module with the zoo's site names. Its logits are its `features` (the readout is
    the identity), or, for a HuggingFace family of PLAIN_HEADS, its features are the decoder's
    last hidden state and its readout the LM head; task accuracy is measured as for the zoo's."""

    def __init__(self, module: nn.Module, sites: dict[str, str]):
        super().__init__()
        self.inner = module
        self.sites = sites
        self.huggingface = hasattr(module, "config") and hasattr(module, "get_input_embeddings")
        # A family whose logits are exactly its head over the decoder's last hidden state: the head
        # is split off, so alignment runs it only where a prediction is scored (continuation/generic.py).
        self.head_after_sites = self.huggingface and getattr(module.config, "model_type", None) in PLAIN_HEADS
        self.readout = module.get_output_embeddings() if self.head_after_sites else nn.Identity()

    def site_root(self) -> nn.Module:
        return self.inner  # site paths read as the user's module prints them

    def site_paths(self) -> dict[str, str]:
        return dict(self.sites)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.huggingface:  # the mask and positions said outright, as for the zoo's HF families
            out = self.inner(**padded_inputs(tokens, torch.ones_like(tokens)), use_cache=False)
        else:
            out = self.inner(tokens)
        return getattr(out, "logits", out)  # a HuggingFace model returns an output object

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """What `readout` maps to logits: the decoder's last hidden state (a split head), else the logits."""
        if self.head_after_sites:
            inputs = padded_inputs(tokens, torch.ones_like(tokens))
            return self.inner.base_model(**inputs, use_cache=False).last_hidden_state
        return self.forward(tokens)


def _probe(model: WrappedModule, task, who: str, sample=None) -> None:
    """The module's forward on a few of the task's sequences (or `sample`, token ids): logits
    [B, L, V] or one line. A language model's V may exceed its tokenizer's size (padded rows)."""
    tokens = (
        torch.tensor(sample)
        if sample is not None
        else torch.from_numpy(task.sample(4, np.random.default_rng(0)).tokens)
    )
    want = (*tokens.shape, len(task.vocab))
    try:
        with torch.no_grad():
            logits = model(tokens)
    except Exception as exc:  # the user's code: any error it raises says what it could not do
        failed = f"the module's forward failed on tokens {tuple(tokens.shape)} ({type(exc).__name__}: {exc})"
        raise ConfigError(f"{who}: {failed}") from None
    shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
    if isinstance(task, TextTask) and isinstance(logits, torch.Tensor) and shape[:2] == want[:2]:
        want = shape if shape[2] >= want[2] else want
    if shape != want:
        raise ConfigError(
            f"{who}: the module must map tokens [B, L] to logits [B, L, V] over the {task.name} "
            f"vocabulary ({len(task.vocab)} tokens): expected {want}, got {shape}"
        )


def wrap(
    module: nn.Module,
    site: str,
    task: str = "count",
    name: str = "wrapped",
    embed: str | None = None,
    who: str | None = None,
    tokenizer=None,
):
    """A FrozenModel of `module` (a frozen copy) named `<task>/<name>/0` in results, with `site`
    as its hidden site (and `embed` as its embed site); refusals name it `who` (default
    `mas.wrap(<name>)`). With a `tokenizer` it is a language model (`text/<name>/0`) over the
    tokenizer's vocabulary, for data=continuation; `task` is then not used. `task` may also be a
    causal model of your own (mas_cli/data/causal.py): the model is then aligned with data=it."""
    if not isinstance(module, nn.Module):
        raise ConfigError(f"mas.wrap needs a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(name, str) or not NAME.match(name) or name in names():
        raise ConfigError(
            f"mas.wrap: name={name!r} must be letters, digits and _ (starting with a letter) and not a zoo "
            f"architecture ({', '.join(names())})"
        )
    sites = {"hidden": site} | ({} if embed is None else {"embed": embed})
    model = WrappedModule(copy.deepcopy(module), sites).eval().requires_grad_(False)
    for path in sites.values():
        resolve_site(model.inner, path)  # a path the module lacks: one line naming the nearest real ones
    digest = store.weights_digest(model.inner.state_dict())
    fingerprint = {"wrapped": name, "module": type(module).__qualname__, "sites": sites}
    if tokenizer is not None:  # a language model: no task to measure it on (data=continuation)
        found = TextTask(tokenizer)
        _probe(model, found, who or f"mas.wrap({name})", sample=[[0, 1, 2, 3]] * 2)
        metrics = {"fingerprint": fingerprint, "trained_to_criterion": True, "criterion": None}
        return FrozenModel(ModelSpec(found.name, name, 0), None, model, found, metrics, digest)
    cfg = compose_config("train", [] if not isinstance(task, str) else [f"task={task}"])
    found = task_from_config(cfg.task) if isinstance(task, str) else CausalTask(task)  # a causal model of your own
    _probe(model, found, who or f"mas.wrap({name})")
    validation = EvalSet.draw(found, cfg.budget.val_size, seeds.training_validation(0), "train", "cpu")
    accuracy, _ = task_accuracy(model, validation)
    metrics = {
        "fingerprint": fingerprint,
        "val_task_acc": accuracy,
        "trained_to_criterion": accuracy >= cfg.budget.criterion,
        "criterion": cfg.budget.criterion,
    }
    return FrozenModel(ModelSpec(found.name, name, 0), None, model, found, metrics, digest)
