"""A pipeline run: train the models an experiment needs, fit its alignments, write the report.

Every job is an ordinary `mas train` or `mas align` config, so results land exactly where those
commands put them, and finished work is reused: a rerun after an interruption, or after adding a
seed, does only what is missing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig
from rich.markup import escape

from mas_cli.console import console, path_line
from mas_cli.console.tables import print_cautions, print_convergence, print_iia_table, print_plan
from mas_cli.pipeline.execute import Outcome, run_jobs
from mas_cli.pipeline.overview import Overview
from mas_cli.pipeline.plan import Job, PipelinePlan, plan_pipeline
from mas_cli.reporting import write_report


def run_pipeline(cfg: DictConfig, plan: PipelinePlan | None = None) -> dict:
    """Plan (unless given), run every stage in order, print the first setting's table, write the
    report. Returns the summary; `failed` counts the refused jobs (the others still ran).
    experiment=lm_case has stages of its own (mas_cli/lm_case/run.py)."""
    if cfg.pipeline.lm_case is not None:
        from mas_cli.lm_case.run import run_lm_case

        return run_lm_case(cfg)
    plan = plan_pipeline(cfg) if plan is None else plan
    stages = {
        "train": plan.train,
        "align": [job for job in plan.align if job.stage == "align"],
        "similarity": [job for job in plan.align if job.stage == "similarity"],
    }
    print_plan({stage: jobs for stage, jobs in stages.items() if jobs})
    outcomes = []
    with Overview() as overview:
        for stage, jobs in stages.items():
            if jobs:
                outcomes += run_stage(cfg, overview, stage, jobs)
    return finish(cfg, plan, outcomes)


def run_stage(cfg: DictConfig, overview: Overview, stage: str, jobs: list[Job]) -> list[Outcome]:
    """Finished jobs run first, in this process: they only check their stored fingerprint (a
    result made with other settings is refused, never silently reused)."""
    workers = cfg.pipeline.jobs
    log_dir = Path(cfg.paths.root) / "pipeline" / "logs"
    done = [job for job in jobs if job.done]
    todo = [job for job in jobs if not job.done]
    progress = overview.stage(stage, len(todo), workers)
    outcomes = run_jobs(done, 1, cfg.threads, log_dir, lambda outcome: None)
    outcomes += run_jobs(todo, workers, cfg.threads, log_dir, progress.finished)
    progress.close()
    return outcomes


def finish(cfg: DictConfig, plan: PipelinePlan, outcomes: list[Outcome]) -> dict:
    order = {job.label: i for i, job in enumerate(plan.align)}
    fitted = sorted((o for o in outcomes if o.rows is not None), key=lambda o: order[o.label])
    failed = [o for o in outcomes if o.error]
    summary = {"models": len(plan.train), "alignments": len(fitted), "failed": len(failed)}
    if fitted:
        main_table(plan, fitted, summary)
    if cfg.pipeline.report and (fitted or any(o.similarity is not None for o in outcomes)):
        root = Path(cfg.paths.root)
        write_report(root, root / "report")
        path_line("report:", root / "report" / "summary.md")
    if failed:
        console.print(f"[red]{len(failed)} job(s) failed[/]; the rest are complete (reused next time):")
        for outcome in failed:
            console.print(escape(f"  {outcome.stage} {outcome.label}:"))
            console.print(escape(f"    {outcome.error}"))
    return summary


def main_table(plan: PipelinePlan, fitted: list[Outcome], summary: dict) -> None:
    """The first setting's IIA table over every model it involves (fits that share a direction,
    e.g. pairwise fits sharing a within-model direction, are averaged)."""
    rows = pd.concat([o.rows for o in fitted], ignore_index=True)
    first = rows.iloc[0]
    same = (rows.method == first.method) & (rows.site == first.site) & (rows.variable == first.variable)
    rows = rows[same & (rows.k == first.k)]
    involved = set(rows.src) | set(rows.trg)
    labels = [spec.label for spec in plan.models if spec.label in involved]
    summary.update(print_iia_table(rows, labels))
    everything = pd.concat([o.rows.assign(run=o.run_dir) for o in fitted], ignore_index=True)
    val = everything[everything.split == "val"]  # every fit of the pipeline, not only the table's
    print_convergence(val)
    print_cautions(val)
