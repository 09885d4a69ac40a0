"""`mas pipeline`: train the models an experiment needs, fit its alignments, write the report."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mas_cli.commands.common import command, configure_runtime
from mas_cli.config import boolean, check_report_folder, require, validate_runtime


def check(cfg: DictConfig) -> None:
    validate_runtime(cfg)
    boolean("plan")(cfg.plan)
    require(not (cfg.plan and cfg.pipeline.lm_case), "plan=true does not price experiment=lm_case; run it")
    if cfg.pipeline.report is True and not cfg.plan:  # written last: a read-only store fails only then
        fix = "add pipeline.report=false to only reuse its results, or mas report out=<a folder you can write>"
        check_report_folder(Path(cfg.paths.root) / "report", "pipeline.report", fix)


@command("pipeline", check=check)
def main(cfg: DictConfig) -> dict:
    from mas_cli.pipeline.plan import plan_pipeline

    plan = None if cfg.pipeline.lm_case else plan_pipeline(cfg)  # every job checked now (lm_case: its own)
    configure_runtime(cfg)
    from mas_cli.pipeline.estimate import print_estimate
    from mas_cli.pipeline.run import run_pipeline

    if cfg.plan:  # prices the jobs at their step caps, runs nothing
        return {"estimate_s": print_estimate(plan, cfg.device)}
    summary = run_pipeline(cfg, plan)
    if summary["failed"]:
        raise SystemExit(1)  # the refused jobs are listed above; the rest completed
    return summary


if __name__ == "__main__":
    main()
