"""mas: Model Alignment Search on the command line, and the library under it.

Do two networks compute the same thing? Train small sequence models on numeric tasks, fit MAS
alignments between the frozen models and read interchange intervention accuracy (IIA):

    import mas_cli as mas
    mas.train(task="count", arch="gru", seed=0, root="outputs")        # like `mas train`
    fit = mas.align(["gru:0", "lstm:0"], root="outputs", budget="quick") # like `mas align`
    fit.iia                                     # the rows of iia.csv (a pandas DataFrame)
    al = mas.load_alignment(fit.run_dir)        # or any run directory
    z = al.to_aligned(0, h)                     # model 0's site activations -> aligned space
    h1 = al.from_aligned(1, z)                  # aligned space -> model 1's site
    out = al.intervene(source=0, target=1, items=100)   # the target's behaviour after a swap
    mas.similarity("gru:0", "lstm:0"), mas.report("outputs"), mas.load_model("count/gru:0")
    mine = mas.wrap(module, site="layers.1", name="mine")   # any torch module beside the zoo's
    mas.align(["gru:0", mine])

docs/API.md shows each call. Names are imported on first use, so `import mas_cli` (and every
command's help and refusals) stays quick.
"""

from __future__ import annotations

from importlib import metadata

from mas_cli.errors import ConfigError, MasError, StoreError

try:
    __version__ = metadata.version("mas-cli")
except metadata.PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0+unknown"

_API = ("train", "load_model", "wrap", "align", "export_items", "load_alignment", "similarity", "report")
__all__ = [*_API, "ConfigError", "MasError", "StoreError", "__version__"]


def __getattr__(name: str):
    if name in _API:
        from mas_cli import api

        return getattr(api, name)
    raise AttributeError(f"module 'mas_cli' has no attribute {name!r}")
