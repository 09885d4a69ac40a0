"""What every command does around its work: a pre-flight check of the command line, the runtime
set-up, and the bad-input contract (one line on stderr, exit status 2, nothing written).

Each command file is `@command(config_name, check)` over a function `work(cfg) -> dict`. The
pre-flight composes the config of every job the command line asks for (each combination of a
`-m` sweep) and runs `check` on it before Hydra starts, so Hydra's own errors, and bad input in
any job of a sweep, are refused in one line before anything is written. torch is imported only
once work starts: help and refusals are immediate.
"""

from __future__ import annotations

import errno
import functools
import itertools
import math
import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mas_cli.composition import (
    compose_config,
    config_groups,
    explain,
    flat_keys,
    leaves,
    override_of,
    plain,
    suggest,
)
from mas_cli.console import fail
from mas_cli.console.help import help_text
from mas_cli.errors import ConfigError, MasError

# What the file system's refusals mean for the user, by errno.
OS_ERRORS = {
    errno.ENAMETOOLONG: "a name in that path is longer than the file system allows; choose shorter names",
    errno.EACCES: "you lack the permission; ask the store's owner for it, or choose another paths.root",
    errno.EPERM: "you lack the permission; ask the store's owner for it, or choose another paths.root",
    errno.EROFS: "that file system is read-only; choose another paths.root",
    errno.ENOSPC: "the disk is full; free space or choose another paths.root",
    errno.EDQUOT: "your disk quota is used up; free space or choose another paths.root",
    errno.ENOTDIR: "a part of that path is a file, not a folder; move it away or choose another path",
    errno.ELOOP: "that path goes through a loop of links; choose another path",
}


def describe_os_error(exc: OSError) -> str:
    """An OSError as one line: which path, what the system said, what to do."""
    where = f"{exc.filename}: " if exc.filename else ""
    fix = OS_ERRORS.get(exc.errno, "check that path and its permissions")
    return f"{where}{exc.strerror or type(exc).__name__}; {fix}"


INTERRUPTED = "interrupted; rerun the same command to resume (finished results are kept)"
_ABSENT = object()
# Hydra's flags that do not run the command's work: Hydra answers them itself.
_HYDRA_ONLY = ("help", "hydra_help", "cfg", "info", "shell_completion", "experimental_rerun")


def configure_runtime(cfg: DictConfig) -> None:
    """What work needs before it starts (each command calls it once its refusals are behind it):
    torch's threads, the allocator's tuning (memory.py) and the console recorded for the results'
    logs (records.py): settings of the whole process, so made here and never by the library."""
    import torch

    from mas_cli import memory
    from mas_cli.console import console

    memory.tune_this_process()

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
    for o, values in zip(parsed, choices):
        if not values:
            raise ConfigError(f"{o.input_line} sweeps over no value: the sweep would run nothing; give it at least one")
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
    except MasError as exc:
        fail(str(exc))
    except Exception as exc:  # Hydra's override grammar
        fail(explain(exc, config_name, args.overrides))
    try:
        for job in jobs:
            refuse_deletions(config_name, job)
            cfg = compose_config(config_name, job, hydra_node=True)
            check_added_keys(config_name, job)
            check_values(cfg, job)
            check_hydra_folders(cfg, args.multirun)
            check(cfg)
    except MasError as exc:
        fail(str(exc))
    except OSError as exc:  # the file system refused a check (a folder the user may not read)
        fail(describe_os_error(exc))
    except OmegaConfBaseException as exc:  # a value the checks cannot read: a bug's trace, in one line
        fail(f"cannot read the mas {config_name} config ({str(exc).splitlines()[0]})")


def refuse_deletions(config_name: str, overrides: list[str]) -> None:
    """`~key` (Hydra's deletion) of a mas setting: every declared setting is read, so a deleted one
    could only fail later, deep inside the work."""
    for override in overrides:
        key = override[1:].split("=")[0]
        if override.startswith("~") and not key.startswith("hydra"):
            raise ConfigError(
                f"{override}: mas {config_name} reads every setting it declares; drop the deletion "
                f"(set another value with {key}=...)"
            )


def check_added_keys(config_name: str, overrides: list[str]) -> None:
    """`+key=value` and `++key=value` are checked like `key=value`: mas's configs declare every
    key, so a key that is not there is a typo mas would otherwise ignore."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    added = [o for o in parsed if (o.is_add() or o.is_force_add()) and not o.key_or_group.startswith("hydra")]
    if not added:
        return
    plain = [o.input_line for o in parsed if not (o.is_add() or o.is_force_add())]
    base = compose_config(config_name, plain)
    groups = set(config_groups())
    for o in added:
        key = o.key_or_group
        if key.split("@")[0] in groups or OmegaConf.select(base, key, default=_ABSENT) is not _ABSENT:
            continue
        raise ConfigError(
            f"{o.input_line}: mas {config_name} has no setting {key}; {suggest(key, flat_keys(base))}"
            f"`mas {config_name} --help` lists them"
        )


def check_values(cfg: DictConfig, overrides: list[str]) -> None:
    """Every value resolves (interpolations such as ${oc.env:...}) and every number is finite: a
    value read as inf or nan (budget.lr=1e400) trains nothing but garbage."""
    for key in cfg:
        if key == "hydra":
            continue
        try:
            value = plain(cfg[key])
        except OmegaConfBaseException as exc:
            where = getattr(exc, "full_key", None) or key
            reason = str(exc).splitlines()[0]
            raise ConfigError(
                f"{override_of(overrides, where)}: cannot resolve it ({reason}); write the value itself"
            ) from None
        for name, leaf in leaves(value, str(key)):
            if isinstance(leaf, float) and not math.isfinite(leaf):
                raise ConfigError(f"{override_of(overrides, name)}: {name} must be a finite number, got {leaf}")


def check_hydra_folders(cfg: DictConfig, multirun: bool) -> None:
    """The folder Hydra makes for this run (the sweep's record with -m) can be made: Hydra's own
    failure there is a traceback."""
    from mas_cli.config import check_writable

    try:
        folder = cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir
    except OmegaConfBaseException:
        return
    try:
        check_writable(Path(str(folder)), existing_ok=True)
    except ConfigError:
        key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
        raise ConfigError(f"{key}={folder} cannot be made; choose a folder you can write to") from None


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
            except OSError as exc:  # the file system refused: a path, a permission, a full disk
                fail(describe_os_error(exc))

        hydra_main = hydra.main(version_base="1.3", config_path="pkg://mas_cli.conf", config_name=config_name)(task)

        def main() -> None:
            summary = (sys.modules[work.__module__].__doc__ or "").strip()
            # `-m` anywhere on the line, as people type it (argparse wants flags first)
            sweep = [a for a in sys.argv[1:] if a in ("-m", "--multirun")]
            sys.argv = [sys.argv[0], *sweep, *(a for a in sys.argv[1:] if a not in sweep)]
            try:
                preflight(config_name, sys.argv[1:], check, summary)
                hydra_main()
            except KeyboardInterrupt:  # Ctrl-C: finished results are kept, the rest resumes
                fail(INTERRUPTED, 130)

        return main

    return decorate
