"""`mas <command> --help`: the groups and keys that command takes, each with its one-line
explanation, read from the comments of its YAML in conf/ (where every default lives) and of the
runtime settings every command shares. Nothing is composed, so help is immediate."""

from __future__ import annotations

import re
import shutil
import textwrap
from importlib import resources

from mas_cli.composition import CONF_MODULE, config_names

_ENTRY = re.compile(r"^(?P<indent> *)(?:- )?(?P<key>[A-Za-z_][\w.]*):(?P<value>[^#]*?)\s*(?:#\s?(?P<note>.*))?$")


def _read(name: str) -> str:
    return (resources.files(CONF_MODULE) / name).read_text()


def _header(text: str) -> list[str]:
    """The comment block at the top of a YAML file as paragraphs (without the `@package` line)."""
    paragraphs = [""]
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        words = line.lstrip("#").strip()
        if "@package" in words:
            continue
        if words:
            paragraphs[-1] = f"{paragraphs[-1]} {words}".strip()
        elif paragraphs[-1]:
            paragraphs.append("")
    return [p for p in paragraphs if p]


def _entries(text: str) -> list[tuple[str, str, str]]:
    """(dotted key, default as written, comment) of every key of a YAML file, in order; a comment
    on the following lines (indented `#`) continues the key's own. A section (a key holding
    others) is shown as `key.*`; keys of a section that share one default and have no comment of
    their own are shown together as `section.<key>`."""
    found, parents, skipping = [], [], False
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            if found and not skipping and line.startswith("  "):
                key, value, note = found[-1]
                found[-1] = (key, value, f"{note} {line.strip().lstrip('# ')}".strip())
            continue
        match = _ENTRY.match(line)
        if not match:
            continue
        depth = len(match["indent"]) // 2
        parents = parents[:depth] + [match["key"]]
        skipping = parents[0] in ("defaults", "hydra")
        if not skipping:
            found.append((".".join(parents), match["value"].strip(), (match["note"] or "").strip()))
    return _collapse(found)


def _collapse(found: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Within a section, keys (three or more) that share one default become one row
    `section.<key>=default`; a section without a comment of its own gets no row."""
    out, shown = [], set()
    for key, value, note in found:
        section = key.rpartition(".")[0]
        if key in shown:
            continue
        if value == "":
            if note:
                out.append((f"{key}.*", "", note))
            continue
        alike = [(k, n) for k, v, n in found if k.rpartition(".")[0] == section and v == value and section]
        if len(alike) >= 3:
            leaves = ", ".join(k.rpartition(".")[2] for k, _ in alike)
            notes = "; ".join(n for _, n in alike if n)
            out.append((f"{section}.<key>", value, f"{notes} (keys: {leaves})".strip()))
            shown.update(k for k, _ in alike)
            continue
        out.append((key, value, note))
    return out


def _groups(text: str) -> list[tuple[str, str, str]]:
    """(group, default option, comment) of the defaults list of a command's YAML."""
    found = []
    for line in text.splitlines():
        match = re.match(r"^\s+- (?P<group>\w+): (?P<option>\w+)\s*(?:#\s?(?P<note>.*))?$", line)
        if match and match["group"] != "runtime":
            found.append((match["group"], match["option"], (match["note"] or "").strip()))
    return found


def _rows(entries: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    return [(f"{key}={value}" if value else key, note) for key, value, note in entries]


def help_text(command: str, summary: str, width: int | None = None) -> str:
    width = width or min(shutil.get_terminal_size((100, 24)).columns, 120)
    own = _read(f"{command}.yaml")
    out = [f"usage: mas {command} [-m] [key=value ...]", ""]
    for line in _header(own) or [summary]:
        out += textwrap.wrap(line, width) or [""]
    out += ["", "-m runs one job per combination of comma-separated values (a sweep: seed=0,1,2)."]

    def block(title: str, rows: list[tuple[str, str]]) -> None:
        if not rows:
            return
        out.extend(["", f"{title}:"])
        column = min(max(len(left) for left, _ in rows) + 2, 28)
        for left, note in rows:
            wrapped = textwrap.wrap(note, width - column - 2) or [""]
            if len(left) + 2 > column:
                out.append(f"  {left}")
                out.extend(f"  {'':{column}}{line}" for line in wrapped)
                continue
            out.append(f"  {left:<{column}}{wrapped[0]}")
            out.extend(f"  {'':{column}}{line}" for line in wrapped[1:])

    groups = []
    for group, default, note in _groups(own):
        options = " | ".join(config_names(group))
        groups.append((f"{group}=<{default}>", f"{options}. {note}".strip()))
    block("groups (choose one option each)", groups)
    block("settings (key=default)", _rows(_entries(own)))
    block("shared by every command", _rows(_entries(_read("runtime/default.yaml"))))
    for group, default, _ in _groups(own):
        if default == "null":
            continue
        entries = [(f"{group}.{k}", v, n) for k, v, n in _entries(_read(f"{group}/{default}.yaml")) if k != "name"]
        if command not in ("align", "pipeline"):  # budget.align configures fits only
            entries = [e for e in entries if not e[0].startswith("budget.align")]
        block(f"{group}.<key> (values of {group}={default}; each option sets its own)", _rows(entries))
    out += ["", f"Hydra's own options: mas {command} --hydra-help."]
    return "\n".join(out)
