"""What a result keeps about the run that made it, beside the result itself: Hydra's record of
the job (`.hydra/config.yaml`, `.hydra/overrides.yaml`, `.hydra/hydra.yaml`, as Hydra writes
them for a job with an output folder) and the job's console log (`<command>.log`).

Written into a store entry's work folder just before it is published, so the record is part of
the checksummed version and a refused or interrupted job leaves none behind. Outside a Hydra job
(the Python API, a pipeline's worker processes) only the parts that exist are written.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mas_cli.console import console
from mas_cli.store import write_text


def write_records(work: Path, cfg: DictConfig, command: str) -> list[str]:
    """Write the record into `work`; returns the file names written (for the manifest)."""
    from hydra.core.hydra_config import HydraConfig

    written = {".hydra/config.yaml": OmegaConf.to_yaml(cfg)}
    if HydraConfig.initialized():
        hydra = HydraConfig.get()
        written[".hydra/overrides.yaml"] = OmegaConf.to_yaml(OmegaConf.create(list(hydra.overrides.task)))
        written[".hydra/hydra.yaml"] = OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra}))
    if console.record:
        written[f"{command}.log"] = console.export_text(clear=False)
    for name, text in written.items():
        write_text(work / name, text)
    return list(written)
