"""What every command does around its work: a pre-flight check of the command line, the runtime
set-up, and the bad-input contract (one line on stderr, exit status 2, nothing written).

Each command file is `@command(config_name, check)` over a function `work(cfg) -> dict`. The
pre-flight composes the config of every job the command line asks for (each combination of a
`-m` sweep) and runs `check` on it before Hydra starts, so Hydra's own errors, and bad input in
any job of a sweep, are refused in one line before anything is written. torch is imported only
once work starts: help and refusals are immediate.
"""

from __future__ import annotations

import functools
import itertools
import sys
from collections.abc import Callable

from omegaconf import DictConfig

from mas_cli.composition import compose_config, explain
from mas_cli.console import fail
from mas_cli.console.help import help_text
from mas_cli.errors import MasError

# Hydra's flags that do not run the command's work: Hydra answers them itself.
_HYDRA_ONLY = ("help", "hydra_help", "cfg", "info", "shell_completion", "experimental_rerun")


def configure_runtime(cfg: DictConfig) -> None:
    """What work needs before it starts (each command calls it once its refusals are behind it):
    torch's threads, and the console recorded for the results' logs (records.py)."""
    import torch

    from mas_cli.console import console

    console.record = True
    # Deliberate thread count: torch's default oversubscribes small CPUs and slows every step.
    torch.set_num_threads(cfg.threads)


def _jobs(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The override list of every job the command line asks for (one, or each sweep combination)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    if not multirun:
        return [overrides]
    choices = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override() else [o.input_line]
        for o in parsed
    ]
    return [list(job) for job in itertools.product(*choices)]


def preflight(config_name: str, argv: list[str], check: Callable[[DictConfig], None], summary: str) -> None:
    """Compose and check every job of this command line; the first problem ends the command.
    `--help` is answered here, from conf/ (help.py)."""
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    parser.error = lambda message: fail(f"{message}; see mas {config_name} --help")
    args = parser.parse_args(argv)
    if args.help:
        print(help_text(config_name, summary))
        raise SystemExit(0)
    if any(getattr(args, flag) for flag in _HYDRA_ONLY):
        return
    try:
        jobs = _jobs(args.overrides, args.multirun)
    except Exception as exc:  # Hydra's override grammar
        fail(explain(exc, config_name, args.overrides))
    try:
        for job in jobs:
            check(compose_config(config_name, job, hydra_node=True))
    except MasError as exc:
        fail(str(exc))


def command(config_name: str, check: Callable[[DictConfig], None]):
    """The entry point of `mas <config_name>`: Hydra's main over `work`, after the pre-flight."""

    def decorate(work: Callable[[DictConfig], dict]) -> Callable[[], None]:
        import hydra

        @functools.wraps(work)
        def task(cfg: DictConfig) -> dict:
            try:
                check(cfg)
                return work(cfg)
            except MasError as exc:
                fail(str(exc))

        hydra_main = hydra.main(version_base="1.3", config_path="pkg://mas_cli.conf", config_name=config_name)(task)

        def main() -> None:
            summary = (sys.modules[work.__module__].__doc__ or "").strip()
            # `-m` anywhere on the line, as people type it (argparse wants flags first)
            sweep = [a for a in sys.argv[1:] if a in ("-m", "--multirun")]
            sys.argv = [sys.argv[0], *sweep, *(a for a in sys.argv[1:] if a not in sweep)]
            preflight(config_name, sys.argv[1:], check, summary)
            hydra_main()

        return main

    return decorate
