"""report/index.html: the whole report on one self-contained page (every figure embedded), each
table also as a LaTeX and a Markdown snippet ready to paste into a paper."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pandas as pd

from mas_cli.reporting.claims import INTRO
from mas_cli.reporting.claims import shown as claims_shown
from mas_cli.reporting.markdown import EXPLAINED, Shown, markdown_table
from mas_cli.results import cautions

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 80rem;
       padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
nav a { margin-right: 1rem; }
.trust { border-left: 4px solid #d97706; background: #fff7ed; padding: 0.6rem 1rem; }
.trust.ok { border-color: #16a34a; background: #f0fdf4; }
.trust li.serious { font-weight: 600; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.6rem 0; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right; }
th { background: #f5f5f7; } td:first-child, th:first-child { text-align: left; }
td { white-space: nowrap; } .same { color: #444; font-size: 0.9rem; }
table.claims td { white-space: normal; text-align: left; } table.claims td:nth-child(8) { font-weight: 600; }
details { margin: 0.3rem 0 1rem; } summary { cursor: pointer; color: #555; }
pre { background: #f5f5f7; padding: 0.6rem; overflow-x: auto; font-size: 0.8rem; }
figure { display: inline-block; margin: 0.6rem 1rem 0.6rem 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.8rem; color: #555; }
.wide img { max-width: 78rem; }
"""


def latex(table: pd.DataFrame) -> str:
    """A booktabs LaTeX table (pandas' Styler, which needs jinja2)."""
    styler = table.style.hide(axis="index")
    return styler.to_latex(hrules=True, column_format="l" * len(table.columns))


def anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _table(title: str, found: Shown) -> str:
    table = found.table
    same = f'<p class="same">Every row: {html.escape(found.same)}.</p>' if found.same else ""
    return "\n".join(
        [
            f'<h2 id="{anchor(title)}">{html.escape(title)}</h2>',
            same,
            table.to_html(index=False, escape=True, na_rep="", border=0),
            f"<details><summary>LaTeX</summary><pre>{html.escape(latex(table))}</pre></details>",
            f"<details><summary>Markdown</summary><pre>{html.escape(markdown_table(table))}</pre></details>",
        ]
    )


CLAIMS = "The papers' claims"


def _claims(claims: pd.DataFrame) -> str:
    """The claims table, first: its cells wrap (long sentences), the verdict in bold."""
    table = claims_shown(claims).to_html(index=False, escape=True, na_rep="", border=0, classes="claims")
    return "\n".join([f'<h2 id="{anchor(CLAIMS)}">{html.escape(CLAIMS)}</h2>', f"<p>{html.escape(INTRO)}</p>", table])


def _figure(out: Path, name: str, caption: str) -> str:
    data = base64.b64encode((out / name).read_bytes()).decode()
    wide = ' class="wide"' if name.startswith(("training", "iia-by-count")) else ""
    return (
        f'<figure{wide}><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)} ({html.escape(name)})</figcaption></figure>"
    )


def _trust(val: pd.DataFrame) -> str:
    found = cautions(val) if not val.empty else []
    if not found:
        return (
            '<div class="trust ok">Every direction stopped by a convergence rule, every model reached its '
            "training criterion, budget quick.</div>"
        )
    items = "".join(f'<li class="{"serious" if c.serious else "note"}">{html.escape(c.long)}</li>' for c in found)
    return f'<div class="trust"><strong>How far to trust these numbers</strong><ul>{items}</ul></div>'


def index_html(
    out: Path,
    source: Path,
    val: pd.DataFrame,
    tables: dict[str, Shown],
    figures: dict[str, list[str]],
    claims: pd.DataFrame | None = None,
) -> str:
    """The page: trust first, then the claims table (when the root holds what a claim needs), every
    table (with snippets), then the figures by kind."""
    runs = val.run.nunique() if not val.empty else 0
    first = [CLAIMS] if claims is not None else []
    sections = [*first, *tables, *(kind for kind, names in figures.items() if names)]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8"><title>MAS report</title>',
        f"<style>{STYLE}</style></head><body>",
        "<h1>MAS report</h1>",
        f"<p>{runs} alignment run(s) under <code>{html.escape(str(source))}</code>, {len(val)} validation rows.</p>",
        _trust(val),
        "<nav>" + "".join(f'<a href="#{anchor(s)}">{html.escape(s)}</a>' for s in sections) + "</nav>",
        f"<p>{html.escape(EXPLAINED).replace('`', '')}</p>",
        *([_claims(claims)] if claims is not None else []),
        *(_table(title, table) for title, table in tables.items()),
    ]
    for kind, names in figures.items():
        if names:
            parts.append(f'<h2 id="{anchor(kind)}">{html.escape(kind)}</h2>')
            parts += [_figure(out, name, kind) for name in names]
    parts.append("</body></html>")
    return "\n".join(parts)
