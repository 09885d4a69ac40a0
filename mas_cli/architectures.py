"""The architectures mas trains and aligns: a name and the model class that builds it, one line
each. Nothing here imports torch, so names are checked before any work starts.

Adding an architecture is one model file and one line below (a HuggingFace family: one YAML in
conf/arch/ and one line). A model class has

    Config             a dataclass of its settings, `vocab_size` first; `Config.check(settings)`
                       refuses, in one line, what the class cannot build
    __init__(config)   the fresh model
    forward(tokens)    logits [B, L, V]: the plain definition alignment's hooks follow
    site_paths()       which module each named site (hidden, embed) is
    features, readout  for training: what the readout sees at each position, and the readout

Its defaults live in conf/arch/<name>.yaml; a class registered from Python (`register`, e.g. by a
test or a plugin) without a YAML brings them as its Config's field defaults.
"""

from __future__ import annotations

import dataclasses
import importlib
from importlib import resources

from mas_cli.errors import ConfigError

HF = "mas_cli.models.hf:HuggingFaceModel"
ARCHITECTURES: dict[str, str | type] = {
    "gru": "mas_cli.models.gru:GRUModel",
    "lstm": "mas_cli.models.lstm:LSTMModel",
    "transformer": "mas_cli.models.transformer:TransformerModel",
    "hf_llama": HF,
    "hf_qwen2": HF,
    "hf_gpt2": HF,
    "hf_gpt_neox": HF,
}
EXTRAS = {HF: ("transformers", 'the HuggingFace extra: pip install -e ".[hf]"')}  # what a class needs installed


def names() -> list[str]:
    return sorted(ARCHITECTURES)


def model_class(name: str) -> type:
    """The model class of architecture `name`, imported on first use."""
    if name not in ARCHITECTURES:
        raise ConfigError(f"arch must be one of {', '.join(names())}, got {name!r}")
    found = ARCHITECTURES[name]
    if not isinstance(found, str):
        return found
    module, _, cls = found.partition(":")
    if found in EXTRAS:
        require_extra(found, f"arch={name}")
    return getattr(importlib.import_module(module), cls)


def require_extra(key: str, who: str) -> None:
    """One line when what `key` (an EXTRAS entry) needs is not installed."""
    needed, how = EXTRAS[key]
    try:
        importlib.import_module(needed)
    except ImportError:
        raise ConfigError(f"{who} needs {how}") from None


def has_yaml(name: str) -> bool:
    return (resources.files("mas_cli.conf") / "arch" / f"{name}.yaml").is_file()


def yaml_defaults(name: str) -> dict:
    """conf/arch/<name>.yaml as plain values (where an in-tree architecture's defaults live)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(resources.files("mas_cli.conf") / "arch" / f"{name}.yaml"))


def register(name: str, model: type) -> None:
    """Add an architecture from Python. Without a conf/arch/<name>.yaml its Config's field
    defaults become the `arch` config group's option `name` (Hydra's ConfigStore)."""
    ARCHITECTURES[name] = model
    if not has_yaml(name):
        from hydra.core.config_store import ConfigStore

        defaults = {f.name: f.default for f in dataclasses.fields(model.Config) if f.default is not dataclasses.MISSING}
        ConfigStore.instance().store(group="arch", name=name, node={"name": name, **defaults})


def unregister(name: str) -> None:
    """Undo `register`: the name and the config group option it stored."""
    if not isinstance(ARCHITECTURES.pop(name, ""), str) and not has_yaml(name):
        from hydra.core.config_store import ConfigStore

        ConfigStore.instance().repo["arch"].pop(f"{name}.yaml", None)
