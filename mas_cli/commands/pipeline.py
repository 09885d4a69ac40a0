"""`mas pipeline`: train the models an experiment needs, fit its alignments, write the report."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mas_cli.commands.common import command, configure_runtime
from mas_cli.config import check_report_folder, validate_runtime


def check(cfg: DictConfig) -> None:
    validate_runtime(cfg)
    if cfg.pipeline.report is True:  # written last: a store the user may only read would fail only then
        fix = "add pipeline.report=false to only reuse its results, or mas report out=<a folder you can write>"
        check_report_folder(Path(cfg.paths.root) / "report", "pipeline.report", fix)


@command("pipeline", check=check)
def main(cfg: DictConfig) -> dict:
    from mas_cli.pipeline.plan import plan_pipeline

    plan = plan_pipeline(cfg)  # every job composed and checked (no torch yet): refusals are immediate
    from mas_cli.pipeline.run import run_pipeline

    configure_runtime(cfg)
    summary = run_pipeline(cfg, plan)
    if summary["failed"]:
        raise SystemExit(1)  # the refused jobs are listed above; the rest completed
    return summary


if __name__ == "__main__":
    main()
