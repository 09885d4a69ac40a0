"""`mas <command> [overrides...]`: hands each command to its own @hydra.main, so that -m,
launchers, run directories and --help work exactly as with the direct `mas-<command>` scripts."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "pipeline": (
        "mas_cli.commands.pipeline",
        "train models, fit alignments, write the report in one go (mas pipeline experiment=...)",
    ),
    "train": (
        "mas_cli.commands.train",
        "train a task model into the model store (mas train task=count arch=gru)",
    ),
    "align": (
        "mas_cli.commands.align",
        "fit MAS alignments between frozen models, write IIA tables (mas align a=gru b=lstm)",
    ),
    "similarity": (
        "mas_cli.commands.similarity",
        "RSA and CKA between two frozen models on the same stimuli (mas similarity a=gru b=lstm)",
    ),
    "sites": (
        "mas_cli.commands.sites",
        "a model's modules, their output shapes and the site names (mas sites arch=hf_llama)",
    ),
    "report": (
        "mas_cli.commands.report",
        "gather every iia.csv and similarity.csv under a root into summary.md and heatmaps (mas report)",
    ),
}

USAGE = """usage: mas <command> [key=value ...]   (mas <command> --help for its settings; mas --version)

commands:
{commands}

Each command is also installed on its own as mas-<command> (Hydra's tab completion binds there)."""


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--version"]:
        from mas_cli import __version__

        print(f"mas {__version__}")
        raise SystemExit(0)
    if not argv or argv[0] in ("-h", "--help", "help"):
        width = max(len(name) for name in COMMANDS)
        lines = "\n".join(f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items())
        print(USAGE.format(commands=lines))
        raise SystemExit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command '{command}'; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        raise SystemExit(2)
    module = importlib.import_module(COMMANDS[command][0])
    sys.argv = [f"mas-{command}", *rest]
    module.main()


if __name__ == "__main__":
    main()
