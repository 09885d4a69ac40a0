"""`mas sites`: a model's modules and the shapes they output, and what each site name means."""

from __future__ import annotations

from omegaconf import DictConfig

from mas_cli.checkpoints import checkpoint_folder, is_checkpoint
from mas_cli.commands.common import command
from mas_cli.config import validate_arch, validate_runtime, validate_task
from mas_cli.specs import parse_spec


def check(cfg: DictConfig) -> None:
    validate_runtime(cfg, writes_root=False)  # only reads (the store, for model=)
    validate_task(cfg.task)
    validate_arch(cfg.arch)
    if is_checkpoint(cfg.model):
        checkpoint_folder(cfg.model)  # a local HuggingFace folder: checked before anything loads
    elif cfg.model is not None:
        parse_spec(cfg.model, cfg.task.name)


@command("sites", check=check)
def main(cfg: DictConfig) -> dict:
    from mas_cli.continuation.sites import site_listing
    from mas_cli.zoo import model_to_inspect

    model, what = model_to_inspect(cfg)
    print("\n".join(site_listing(model, what)))
    return {"model": what}


if __name__ == "__main__":
    main()
