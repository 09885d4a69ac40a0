"""`mas align`: fit MAS (or DAS, one model) alignment functions and print the m × m IIA table."""

from __future__ import annotations

from omegaconf import DictConfig

from mas_cli.alignment.plan import plan_alignment
from mas_cli.alignment.settings import validate_align
from mas_cli.commands.common import command, configure_runtime


def check(cfg: DictConfig) -> None:
    validate_align(cfg)
    plan_alignment(cfg)


@command("align", check=check)
def main(cfg: DictConfig) -> dict:
    from mas_cli.alignment.job import align
    from mas_cli.console.tables import print_alignment

    configure_runtime(cfg)
    result = align(cfg)
    return print_alignment(result.rows, [s.label for s in result.specs], result.run_dir, result.reused)


if __name__ == "__main__":
    main()
