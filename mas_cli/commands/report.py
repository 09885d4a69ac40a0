"""`mas report`: tables and heatmaps from the run directories under a root (nothing is re-run)."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from mas_cli.commands.common import reports_bad_input
from mas_cli.config import ConfigError, check_writable
from mas_cli.console import console
from mas_cli.report import write_report


@hydra.main(version_base="1.3", config_path="pkg://mas_cli.conf", config_name="report")
@reports_bad_input
def main(cfg: DictConfig) -> dict:
    source, out = Path(cfg.source), Path(cfg.out)
    if not source.is_dir():
        raise ConfigError(f"source={source} is not a folder; point it (or paths.root) at a results root")
    check_writable(out)
    rows = write_report(source, out)
    runs = int(rows.run.nunique()) if not rows.empty else 0
    console.print(f"{runs} alignment run(s), {len(rows)} rows -> {out / 'summary.md'}")
    return {"runs": runs, "rows": len(rows)}


if __name__ == "__main__":
    main()
