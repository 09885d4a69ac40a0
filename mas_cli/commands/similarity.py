"""`mas similarity`: RSA and CKA between two frozen models (docs/METHODS.md § Correlative measures),
one tidy similarity.csv."""

from __future__ import annotations

from omegaconf import DictConfig

from mas_cli.commands.common import command, configure_runtime
from mas_cli.correlative.run import plan_similarity, validate_similarity


def check(cfg: DictConfig) -> None:
    validate_similarity(cfg)
    plan_similarity(cfg)


@command("similarity", check=check)
def main(cfg: DictConfig) -> dict:
    from mas_cli.console.tables import print_similarity
    from mas_cli.correlative.run import similarity

    configure_runtime(cfg)
    return print_similarity(similarity(cfg))


if __name__ == "__main__":
    main()
