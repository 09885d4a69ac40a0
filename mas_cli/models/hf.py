"""A HuggingFace causal language model of any family transformers knows (Llama, Qwen2, GPT-2,
GPT-NeoX, ...), built from a config alone and trained from scratch on a task's own vocabulary.
Nothing is downloaded: `AutoConfig.for_model(family, **settings)` and `from_config`.

Each family is one YAML in conf/arch/ (hf_llama.yaml, ...): `family` is transformers' model type,
`hf` its config's own keys (sizes, heads, positions), `hidden_layer` where the hidden site is.

    embed   the input embedding (`get_input_embeddings()`; GPT-2's position embedding is added
            after it, inside the model)
    hidden  the output of decoder layer `hidden_layer` − 1: the residual stream after
            `hidden_layer` layers, as the zoo transformer's

Site paths are those of the HuggingFace model itself (`model.layers.0` for Llama, `transformer.h.0`
for GPT-2), so `site=` takes any path HuggingFace prints. The token ids are the task's (PAD 0,
BOS 1, EOS 2). Sequences are right-padded and attention is causal, so padding never changes a
prediction at a real token; the attention mask and the positions (0, 1, 2, ... from the first real
token) are passed explicitly in every call (`padded_inputs`), so a batch padded on the left
predicts what each item predicts alone too (tests/test_padding.py).

Weights are stored as safetensors (training.py), which needs the `safetensors` package of the
same extra: `pip install -e ".[hf]"`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from mas_cli.composition import plain
from mas_cli.config import number_in, positive_int, require
from mas_cli.errors import ConfigError
from mas_cli.models.base import SequenceModel, layer_stack, module_path
from mas_cli.tasks.vocab import BOS, EOS, PAD


@dataclass
class HuggingFaceConfig:
    vocab_size: int
    family: str  # transformers' model type: llama | qwen2 | gpt2 | gpt_neox | ...
    hidden_layer: int  # the hidden site is the residual after this many decoder layers
    hf: dict = field(default_factory=dict)  # the family's own config keys (hidden_size, num_hidden_layers, ...)

    @staticmethod
    def check(settings) -> None:
        require(isinstance(settings.get("family"), str), "arch.family must name a transformers model type")
        positive_int(settings.get("hidden_layer"), "arch.hidden_layer")
        number_in(settings.get("grad_clip", 0.0), "arch.grad_clip", 0, float("inf"), "[0, inf); 0 turns clipping off")
        require(hasattr(settings.get("hf"), "keys"), "arch.hf must hold the family's config keys")
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING

        family = settings.family
        require(family in CONFIG_MAPPING, f"arch.family={family} is not a model type transformers knows")
        config = HuggingFaceConfig(
            vocab_size=16, family=family, hidden_layer=settings.hidden_layer, hf=plain(settings.hf)
        )
        try:  # transformers checks its own keys: built on the meta device, nothing is allocated
            with torch.device("meta"):
                HuggingFaceModel(config)
        except ConfigError:
            raise
        except Exception as exc:  # transformers raises many kinds
            raise ConfigError(f"arch.hf: transformers cannot build this {family} ({reason(exc)})") from None


def reason(exc: Exception) -> str:
    """What transformers says went wrong: the last line of its message (it raises many kinds)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    return lines[-1][:200]


def padded_inputs(tokens: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
    """A padded batch as a HuggingFace model must see it: `real` [B, L] (1 at real tokens, 0 at
    padding, on either side) is the attention mask, and each real token's position is the number
    of real tokens before it, said outright. Left out, a family guesses positions from the column
    (GPT-2's learned positions then move under left padding), so every call passes both."""
    real = real.to(tokens.dtype)
    positions = (real.cumsum(1) - 1).clamp(min=0)
    return {"input_ids": tokens, "attention_mask": real, "position_ids": positions}


class HuggingFaceModel(SequenceModel):
    Config = HuggingFaceConfig
    weights_format = "safetensors"
    head_after_sites = True  # features (the decoder, every site inside it) then the head: generic.py

    def __init__(self, config: HuggingFaceConfig):
        super().__init__()
        from transformers import AutoConfig, AutoModelForCausalLM

        self.config = config
        ids = {"pad_token_id": PAD, "bos_token_id": BOS, "eos_token_id": EOS}
        settings = AutoConfig.for_model(config.family, vocab_size=config.vocab_size, **ids, **dict(config.hf))
        settings._attn_implementation = "sdpa"
        self.hf = AutoModelForCausalLM.from_config(settings)
        layers = layer_stack(self.hf)
        if layers is None or not 0 < config.hidden_layer < len(self.hf.get_submodule(layers)) + 1:
            size = len(self.hf.get_submodule(layers)) if layers is not None else 0
            raise ConfigError(
                f"arch.hidden_layer must be between 1 and {size} (the decoder layers of this {config.family})"
            )
        self._hidden = f"{layers}.{config.hidden_layer - 1}"
        embedding = self.hf.get_input_embeddings()
        self._embed = module_path(self.hf, embedding)

    def site_root(self) -> nn.Module:
        return self.hf

    def site_paths(self) -> dict[str, str]:
        return {"embed": self._embed, "hidden": self._hidden}

    def inputs(self, tokens: torch.Tensor, real: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """What the HF model is called with (`padded_inputs`). The zoo's batches are right-padded
        and attention is causal, so by default every token is attended to: right padding never
        reaches a real token."""
        return padded_inputs(tokens, torch.ones_like(tokens) if real is None else real)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.hf(**self.inputs(tokens), use_cache=False).logits

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """The last hidden state (after the final norm): what the LM head reads."""
        return self.hf.base_model(**self.inputs(tokens), use_cache=False).last_hidden_state

    @property
    def readout(self) -> nn.Module:
        return self.hf.get_output_embeddings()

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.hf.get_input_embeddings()(tokens)
