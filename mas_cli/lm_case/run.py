"""`mas pipeline experiment=lm_case`: the paper's language-model case in miniature.

1. models.py makes one base LM and fine-tunes a copy on each of `splits` disjoint parts of each
   style's corpus (corpus.py): harsh0..2 and kind0..2.
2. Every pair of fine-tuned models gets its own MAS fit, an ordinary `mas align` job with
   `data=continuation` over the case's prompts at the embed site (both cross directions).
3. The unit is the model pair: its IIA is the mean of its two directions' validation IIA. The
   pairs of one style are "within", the others "across"; each group's mean gets a 95 % t
   interval over its pairs, and the report says which is higher only when the intervals do not
   overlap (the rule is fixed here, before any run).

Written to <root>/report/lm_case.md and lm_case.csv (one row per pair), and printed.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf
from rich.table import Table

from mas_cli.architectures import HF, require_extra
from mas_cli.composition import compose_config, inherit_runtime
from mas_cli.console import console, path_line
from mas_cli.errors import ConfigError
from mas_cli.lm_case import corpus
from mas_cli.lm_case.models import make_models, write_prompts
from mas_cli.stats import t_interval
from mas_cli.store import write_text

GROUPS = ("within", "across")


def run_lm_case(cfg: DictConfig) -> dict:
    """Make the models, fit every pair, write and print the within/across comparison."""
    require_extra(HF, "experiment=lm_case")
    from mas_cli.alignment.job import align
    from mas_cli.alignment.settings import validate_align

    settings, root = cfg.pipeline.lm_case, Path(cfg.paths.root)
    if settings.models:  # your own checkpoints (e.g. a real fine-tuned pair on a GPU): nothing trained
        folders, prompts = own_models(settings)
    else:
        folders = make_models(settings, root, cfg.seed)
        prompts = write_prompts(root, settings.prompts, cfg.seed)
    tuned = [name for name in folders if name != "base"]
    rows = []
    for a, b in combinations(tuned, 2):
        job = pair_job(cfg, folders[a], folders[b], prompts)
        validate_align(job)
        val = align(job).rows.query("split == 'val'")
        kind = "within" if style_of(a) == style_of(b) else "across"
        rows.append({"a": a, "b": b, "kind": kind, "iia": val.iia.mean(), "iia_none": val.iia_none.mean()})
    pairs = pd.DataFrame(rows)
    summary = summarise(pairs) | {"styles": None if settings.models else style_shares(folders, prompts, job)}
    if cfg.pipeline.report:  # the usual report of every fit (`mas report`), then the case's own beside it
        from mas_cli.reporting import write_report as write_every_fit

        write_every_fit(root, root / "report")
    write_report(root / "report", pairs, summary)
    print_summary(summary)
    path_line("report:", root / "report" / "lm_case.md")
    return {"models": len(folders), "alignments": len(pairs), "failed": 0}


def style_of(name: str) -> str:
    """A model's style: its name without the split number (harsh0 -> harsh)."""
    return name.rstrip("0123456789")


def own_models(settings) -> tuple[dict[str, Path], Path]:
    """pipeline.lm_case.models ({name: hf:<dir> or <dir>}) and the prompts of pipeline.lm_case.texts."""
    folders = {
        str(name): Path(str(folder).removeprefix("hf:")).expanduser() for name, folder in settings.models.items()
    }
    if len({style_of(name) for name in folders}) < 2 or len(folders) < 3:
        raise ConfigError(
            "pipeline.lm_case.models needs at least three models of at least two styles, named <style><split>, "
            "e.g. {toxic0: hf:./t0, toxic1: hf:./t1, clean0: hf:./c0}"
        )
    if not settings.texts:
        raise ConfigError("pipeline.lm_case.models needs pipeline.lm_case.texts=<prompts.txt>, one prompt per line")
    return folders, Path(settings.texts).expanduser()


def pair_job(cfg: DictConfig, a: Path, b: Path, prompts: Path) -> DictConfig:
    """One pair's `mas align` config: the case's data and settings, the pipeline's budget, root,
    device and threads, then the case's own budget keys."""
    own = list(cfg.pipeline.lm_case.align)
    job = compose_config("align", [f"a=hf:{a}", f"b=hf:{b}", "data=continuation", f"data.texts={prompts}", *own])
    inherit_runtime(cfg, job)
    job = OmegaConf.merge(job, OmegaConf.from_dotlist([o for o in own if o.startswith("budget.")]))
    job.directions, job.seed = "cross", cfg.seed  # the two directions between the models: the pair's IIA
    return job


def style_shares(folders: dict[str, Path], prompts: Path, job: DictConfig) -> pd.DataFrame:
    """Per model, the share of prompts whose greedy continuation starts with a verb of each
    style (the continuations the fits used): what fine-tuning did to each model."""
    from mas_cli.checkpoints import load_checkpoint
    from mas_cli.data.continuation import continuations, with_texts

    rows = []
    for name, folder in folders.items():
        (model,) = with_texts(job, [load_checkpoint(f"hf:{folder}", "text")])
        found = continuations(model, job.data.new_tokens, job.paths.root, "cpu")
        verbs = [model.task.tokenizer.decode([c[0]]) for c in found]
        shares = {style: sum(v in corpus.STYLES[style]["verbs"] for v in verbs) / len(verbs) for style in corpus.STYLES}
        rows.append({"model": name, **shares})
    return pd.DataFrame(rows)


def summarise(pairs: pd.DataFrame) -> dict:
    """Per group: pairs, mean IIA with its 95 % t interval over pairs, mean iia_none; and the
    verdict: a group is higher only when the two intervals do not overlap."""
    groups = {}
    for kind in GROUPS:
        found = pairs[pairs.kind == kind]
        lo, hi = t_interval(found.iia)
        groups[kind] = {
            "pairs": len(found),
            "iia": found.iia.mean(),
            "lo": lo,
            "hi": hi,
            "iia_none": found.iia_none.mean(),
        }
    within, across = groups["within"], groups["across"]
    if within["lo"] > across["hi"]:
        verdict = "within-style pairs align better than across-style pairs"
    elif across["lo"] > within["hi"]:
        verdict = "across-style pairs align better than within-style pairs"
    else:
        verdict = "within and across cannot be told apart (the 95 % intervals overlap)"
    return {"groups": groups, "verdict": verdict}


def _interval(group: dict) -> str:
    return f"{group['iia']:.3f} [{group['lo']:.3f}, {group['hi']:.3f}]"


def write_report(folder: Path, pairs: pd.DataFrame, summary: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / "lm_case.csv", pairs.to_csv(index=False))
    if summary["styles"] is not None:
        write_text(folder / "lm_case_styles.csv", summary["styles"].to_csv(index=False))
    lines = [
        "# The language-model case in miniature",
        "",
        "MAS at the embed site between language models fine-tuned on two styles of text (three splits",
        "each); the target must predict the source's own greedy next token (docs/DATA.md § Continuations).",
        "Unit: the model pair (mean of its two directions' validation IIA); 95 % t intervals over pairs.",
        "",
        "| pairs | n | IIA [95 % CI] | without intervention |",
        "|---|---|---|---|",
    ]
    for kind, group in summary["groups"].items():
        lines.append(f"| {kind} | {group['pairs']} | {_interval(group)} | {group['iia_none']:.3f} |")
    lines += ["", f"**{summary['verdict']}.**", ""]
    if summary["styles"] is not None:  # the case's own models
        lines += ["What fine-tuning did: the share of prompts each model continues with a verb of each style.", ""]
        lines += ["| model | " + " | ".join(corpus.STYLES) + " |", "|---|" + "---|" * len(corpus.STYLES)]
        for row in summary["styles"].itertuples(index=False):
            lines.append(f"| {row[0]} | " + " | ".join(f"{v:.2f}" for v in row[1:]) + " |")
        lines.append("")
    lines += ["| a | b | kind | IIA | without |", "|---|---|---|---|---|"]
    lines += [f"| {r.a} | {r.b} | {r.kind} | {r.iia:.3f} | {r.iia_none:.3f} |" for r in pairs.itertuples()]
    write_text(folder / "lm_case.md", "\n".join(lines) + "\n")


def print_summary(summary: dict) -> None:
    table = Table(title="language-model case: validation IIA by model pair")
    for column in ("pairs", "n", "IIA [95 % CI]", "without"):
        table.add_column(column, justify="right" if column != "pairs" else "left")
    for kind, group in summary["groups"].items():
        table.add_row(kind, str(group["pairs"]), _interval(group), f"{group['iia_none']:.3f}")
    console.print(table)
    console.print(summary["verdict"])
    styles = summary["styles"]
    if styles is None:
        return
    shares = Table(title="what fine-tuning did: prompts continued with a verb of each style")
    for column in styles.columns:
        shares.add_column(column, justify="left" if column == "model" else "right")
    for row in styles.itertuples(index=False):
        shares.add_row(row[0], *(f"{v:.2f}" for v in row[1:]))
    console.print(shares)
