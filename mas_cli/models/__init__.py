"""The model zoo: one file per architecture, all sharing the protocol in `base`; which names exist
and which class builds each is mas_cli/architectures.py."""

from __future__ import annotations

from dataclasses import asdict, fields

from mas_cli.architectures import has_yaml, model_class, yaml_defaults
from mas_cli.composition import plain
from mas_cli.models.base import SITES, SequenceModel

__all__ = ["SITES", "SequenceModel", "build_model", "model_spec"]


def build_model(arch: str, vocab_size: int, settings) -> SequenceModel:
    """A fresh model of `arch`; `settings` is any mapping of its config fields (the rest are the
    architecture's defaults: conf/arch/<arch>.yaml, or the Config's own for a registered class)."""
    cls = model_class(arch)
    known = {f.name for f in fields(cls.Config)} - {"vocab_size"}
    given = yaml_defaults(arch) if has_yaml(arch) else {}
    given |= {k: plain(settings[k]) for k in known if k in settings}  # a stored config is read back plain
    model = cls(cls.Config(vocab_size=vocab_size, **{k: v for k, v in given.items() if k in known}))
    model.arch = arch
    return model


def model_spec(model: SequenceModel) -> dict:
    """Everything needed to rebuild `model` (weights aside): its arch and config fields."""
    return {"arch": model.arch, "config": asdict(model.config)}
