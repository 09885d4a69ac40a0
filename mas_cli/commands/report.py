"""`mas report`: tables and heatmaps from the run directories under a root (nothing is re-run)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mas_cli.commands.common import command
from mas_cli.config import check_report_folder, validate_runtime
from mas_cli.errors import ConfigError


def output(cfg: DictConfig) -> Path:
    """`out` under paths.root unless it is absolute (or already starts there)."""
    out, root = Path(cfg.out), Path(cfg.paths.root)
    return out if out.is_absolute() or out.parts[: len(root.parts)] == root.parts else root / out


def check(cfg: DictConfig) -> None:
    validate_runtime(cfg, writes_root=False)  # the report reads the root and writes only `out`
    if not Path(cfg.source).is_dir():
        raise ConfigError(f"source={cfg.source} is not a folder; point it (or paths.root) at a results root")
    check_report_folder(output(cfg), "out", "")


@command("report", check=check)
def main(cfg: DictConfig) -> dict:
    from mas_cli.console import console, path_line
    from mas_cli.reporting import write_report

    rows = write_report(Path(cfg.source), output(cfg))
    runs = int(rows.run.nunique()) if not rows.empty else 0
    console.print(f"{runs} alignment run(s), {len(rows)} rows")
    path_line("report:", output(cfg) / "index.html")
    return {"runs": runs, "rows": len(rows)}


if __name__ == "__main__":
    main()
