"""Experiment tracking: scalars of `mas train` and `mas align` at every validation, written to
TensorBoard when `logger=tensorboard` (off by default; `pip install "mas-cli[tensorboard]"`).

Event files go to `<paths.root>/tensorboard/<command>/<result>/`, live while the job runs (they
are not part of the result, which stays complete or absent): `tensorboard --logdir
outputs/tensorboard` shows every run of a store.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mas_cli.errors import ConfigError

LOGGERS = ("tensorboard",)


class Tracker:
    """No tracking: every call does nothing."""

    def scalars(self, step: int, values: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoard(Tracker):
    def __init__(self, folder: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                'logger=tensorboard needs the tensorboard package: pip install "mas-cli[tensorboard]"'
            ) from None
        self.writer = SummaryWriter(log_dir=str(folder))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def tracker(cfg: DictConfig, command: str, result: Path) -> Tracker:
    """The tracker `cfg.logger` asks for, writing under <root>/tensorboard/<command>/<result>."""
    if cfg.get("logger") != "tensorboard":
        return Tracker()
    relative = result.relative_to(Path(cfg.paths.root)) if result.is_relative_to(Path(cfg.paths.root)) else result
    return TensorBoard(Path(cfg.paths.root) / "tensorboard" / command / relative)
