"""The model zoo: one file per architecture, all sharing the protocol in `base`."""

from __future__ import annotations

from dataclasses import asdict, fields

from mas_cli.models.base import SITES, SequenceModel
from mas_cli.models.gru import GRUConfig, GRUModel
from mas_cli.models.lstm import LSTMConfig, LSTMModel
from mas_cli.models.transformer import TransformerConfig, TransformerModel

ARCHITECTURES = {
    "gru": (GRUConfig, GRUModel),
    "lstm": (LSTMConfig, LSTMModel),
    "transformer": (TransformerConfig, TransformerModel),
}

__all__ = ["ARCHITECTURES", "SITES", "SequenceModel", "build_model", "model_spec"]


def build_model(arch: str, vocab_size: int, settings) -> SequenceModel:
    """A fresh model of `arch`; `settings` is any mapping holding (at least) the config fields."""
    config_cls, model_cls = ARCHITECTURES[arch]
    known = {f.name for f in fields(config_cls)} - {"vocab_size"}
    config = config_cls(vocab_size=vocab_size, **{k: settings[k] for k in known if k in settings})
    return model_cls(config)


def model_spec(model: SequenceModel) -> dict:
    """Everything needed to rebuild `model` (weights aside): its arch and config fields."""
    arch = next(name for name, (_, cls) in ARCHITECTURES.items() if isinstance(model, cls))
    return {"arch": arch, "config": asdict(model.config)}
