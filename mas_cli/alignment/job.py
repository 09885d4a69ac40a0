"""One `mas align` job: plan from the config, make sure the models exist, fit, write the results.

A run directory `<paths.root>/alignments/<settings>/<models>/` (a store entry: complete or
absent, checksummed; store/entries.py) holds
    alignment.pt   the fitted alignment functions, the full config and the fingerprint
    curve.csv      validation metrics by step (tidy: step × direction × split)
    config.yaml    the resolved config
    iia.csv        one row per direction × variable × split
A complete run with the same fingerprint is reused; an interrupted one resumes from the
checkpoint in its work folder.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from mas_cli import store
from mas_cli.alignment.directions import build_directions
from mas_cli.alignment.fit import Aligner
from mas_cli.alignment.plan import (
    ALIGNMENT_FORMAT,
    Plan,
    check_models,
    fingerprint_of,
    model_task,
    model_texts,
    plan_alignment,
)
from mas_cli.alignment.scoring import unintervened
from mas_cli.alignment.settings import ALIGN, swap_map, swapped
from mas_cli.alignment.swaps import row_variable, variable_blocks
from mas_cli.checkpoints import is_checkpoint, load_checkpoint
from mas_cli.config import refuse_other_settings
from mas_cli.console import console, path_line
from mas_cli.data import counterfactual_source
from mas_cli.data.texts import TextTask
from mas_cli.errors import ConfigError, StoreError
from mas_cli.memory import release_free_heap
from mas_cli.records import write_records
from mas_cli.specs import ModelSpec
from mas_cli.stats import wilson
from mas_cli.tracking import tracker
from mas_cli.training import resolve_device
from mas_cli.zoo import (
    Described,
    FrozenModel,
    ModelsOnDemand,
    load_frozen,
    refuse_changed_models,
    site_width_of,
    variables_of,
)

RUN_FILES = ["alignment.pt", "config.yaml", "curve.csv", "items.csv", "iia.csv"]


@dataclass
class AlignResult:
    run_dir: Path
    rows: pd.DataFrame  # the iia.csv rows
    specs: list[ModelSpec]
    reused: bool

    @property
    def iia(self) -> pd.DataFrame:
        """The iia.csv rows (one per direction × variable × split)."""
        return self.rows


def align(cfg: DictConfig, wrapped: list[FrozenModel] = (), causal=None) -> AlignResult:
    """Reuse the complete run for this config, or fit it (resuming a checkpoint). Bad settings
    are refused before anything is trained or written; missing models are trained first. A
    complete run is reused without taking its lock (a store the user cannot write is read all
    the same). `wrapped`: models wrapped in Python (mas.wrap), named in cfg.models by label;
    `causal`: the causal model of data=causal (mas_cli/data/causal.py)."""
    checkpoints = [load_checkpoint(t, model_task(cfg), cfg.dtype) for t in model_texts(cfg) if is_checkpoint(t)]
    given = {m.spec.label: m for m in [*wrapped, *checkpoints]}
    plan = plan_alignment(cfg, {label: m.spec for label, m in given.items()})
    stored = [s for s in plan.specs if s.label not in given]
    on_demand = ModelsOnDemand(cfg)
    missing = [s for s in stored if not store.model_entry(cfg.paths.root, s.task, s.arch, s.seed).complete()]
    if missing:
        check_models(plan.cfg, [on_demand.describe(s, cfg.site, cfg.causal_model) for s in missing])
    entries = dict(zip(stored, on_demand.ensure(stored)))
    device = resolve_device(cfg.device)
    models = [
        _on(given[s.label], device) if s.label in given else load_frozen(s, entries[s], device, cfg.allow_undertrained)
        for s in plan.specs
    ]
    plan = plan.with_k(check_models(plan.cfg, [describe(m, cfg.site, cfg.causal_model) for m in models]))
    models, draw = counterfactual_source(plan.cfg, models, causal)  # data files checked against the models
    wanted = fingerprint_of(plan, [m.identity() for m in models])
    entry = store.Entry(plan.run_dir, redo="refit with force=true", root=cfg.paths.root)
    if not cfg.force and (found := _reusable(entry, plan, wanted, models)) is not None:
        return found
    with entry.exclusive(lambda: path_line("waiting: another job is fitting", plan.run_dir)):
        entry.adopt_finished()
        if not cfg.force and (found := _reusable(entry, plan, wanted, models)) is not None:
            return found
        return fit(plan, entry, models, wanted, device, draw)


def _on(model: FrozenModel, device) -> FrozenModel:
    model.model.to(device)
    return model


def _reusable(entry: store.Entry, plan: Plan, wanted: dict, models: list[FrozenModel]) -> AlignResult | None:
    folder = entry.current()
    if folder is None:
        return None
    found = read_alignment(folder / "alignment.pt")["fingerprint"]
    refuse_changed_models(plan.run_dir, found, models, "refit")
    refuse_other_settings(plan.run_dir, found, wanted, "an alignment fitted", "refit")
    path_line("reusing (complete; force=true refits):", plan.run_dir)
    return AlignResult(plan.run_dir, read_iia(folder / "iia.csv"), plan.specs, reused=True)


def read_iia(path: Path) -> pd.DataFrame:
    """A run's iia.csv, checked to hold the rows a table needs."""
    try:
        rows = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        raise StoreError(f"{path} is unreadable; refit with force=true") from None
    needed = {"src", "trg", "split", "iia", "variable", "method", "site", "k"}
    if not needed <= set(rows.columns) or rows.empty:
        raise StoreError(f"{path} lacks the columns of an iia.csv; refit with force=true")
    return rows


def describe(model: FrozenModel, site: str, causal_model: str | None) -> Described:
    width = site_width_of(model.model, site, model.spec)
    if isinstance(model.task, TextTask):  # a language model: its items name no causal variable
        return Described(model.spec.label, width, ())
    return Described(model.spec.label, width, variables_of(model.task, causal_model, model.spec.label))


def fit(plan: Plan, entry: store.Entry, models: list[FrozenModel], fingerprint: dict, device, draw=None) -> AlignResult:
    """Fit in the entry's work folder (force=true: from scratch), then publish it; `draw`: the
    run's source of counterfactuals (mas_cli/data/; None: the task's causal model)."""
    cfg = plan.cfg
    work = entry.start(fresh=cfg.force)
    checkpoint = work / "checkpoint.pt"
    mapped = "".join(f", {task} models swap {variable}" for task, variable in sorted(swap_map(cfg).items()))
    swap = "+".join(swapped(cfg))
    console.print(f"counterfactual data: {len(plan.pairs)} direction(s), swap={swap}{mapped}, site={cfg.site}")
    try:
        directions = make_directions(plan, models, device, draw)
    except ValueError as exc:  # the counterfactual generator found nothing it can express
        raise ConfigError(f"{exc}; map variables whose values both tasks can hold") from None
    for d in directions:
        unmatched, items = d.unmatched(), len(d.train) + len(d.val)
        if unmatched == items:
            raise ConfigError(
                f"no natural latent of {models[d.target].spec.label} matches any counterfactual of direction "
                f"{d.source}-{d.target}; drop it from cl.directions"
            )
        if unmatched:
            console.print(f"direction {d.source}-{d.target}: {unmatched} of {items} items have no matching latent")
    aligner = Aligner(cfg, models, directions, device)
    tasks = {m.spec.task for m in models}
    title = f"{cfg.method} " + " ".join(
        m.spec.label.split("/", 1)[1] if len(tasks) == 1 else m.spec.label for m in models
    )
    wall = aligner.run(checkpoint, fingerprint, title, tracker(cfg, "align", plan.run_dir))
    rows = result_rows(plan, aligner)
    console.print(f"fitted in {wall:.1f} s")
    write_run(work, plan, aligner, fingerprint, rows)
    checkpoint.unlink(missing_ok=True)
    records = write_records(work, cfg, "align")
    entry.publish([*RUN_FILES, *records])  # the whole run appears at once; until then an older one stays in use
    return AlignResult(plan.run_dir, rows, plan.specs, reused=False)


def make_directions(plan: Plan, models: list[FrozenModel], device, draw=None):
    """Every direction's data: a block per swapped variable (and the null block)."""
    cfg = plan.cfg
    blocks = variable_blocks(cfg, min(m.at(cfg.site).width() for m in models))
    return build_directions(
        models,
        plan.pairs,
        cfg.site,
        blocks,
        cfg.budget.align,
        cfg.seed,
        device,
        plan.latent_pairs,
        cfg.cl.bank_size,
        causal_model=cfg.causal_model,
        by_task=swap_map(cfg),
        draw=draw,
    )


def result_rows(plan: Plan, aligner: Aligner) -> pd.DataFrame:
    """One row per direction × variable × split: the run's settings (registry), the models of
    the fit, then the scores: IIA with its 95 % Wilson interval over the items, and `iia_none`,
    the IIA of the same items without any intervention (the level a swap that does nothing
    reaches), and whether source and target reached their training criterion."""
    settings = ALIGN.columns(plan.cfg) | {"models": "+".join(s.label for s in plan.specs)}
    trained = [bool(m.metrics.get("trained_to_criterion")) for m in aligner.models]  # reached its criterion
    rows = []
    with torch.no_grad():
        weights = aligner.aligned_rows()
    for d in aligner.directions:
        for split, data in (("train", d.train), ("val", d.val)):
            found = aligner.evaluate(d, data, rows=weights)
            scores = aligner.scores_row(d, split, found)
            lo, hi = wilson(round(found.iia * found.n), found.n)
            none = aligner.evaluate(d, data, rows=weights, interchange=unintervened)
            scores |= {"iia_lo": lo, "iia_hi": hi, "iia_none": none.iia}
            scores |= {f"{side}_trained": trained[m] for side, m in (("src", d.source), ("trg", d.target))}
            if d.latent:
                scores["cl_unmatched"] = int((~data.items.has_latent).sum())
            rows.append({**settings, **scores, "steps": aligner.step, "stop": aligner.stop_reason})
        release_free_heap()  # each direction's evaluation batches differ in size: keep the heap small
    return pd.DataFrame(rows)


def item_rows(plan: Plan, aligner: Aligner) -> pd.DataFrame:
    """One row per validation item of every direction: the swapped variable's value at τ before
    and after the swap (`before`, `after`; the variable named in `read`), and whether the target
    got the item right with the swap (`correct`) and without any (`correct_none`). Graded
    symbols show here: IIA by count, by the distance between the original and swapped count.
    A causal model with no variables (`context`) leaves `read`, `before` and `after` empty."""
    frames = []
    with torch.no_grad():
        weights = aligner.aligned_rows()
    for d in aligner.directions:
        target_task = aligner.models[d.target].task.name
        name = swap_map(plan.cfg).get(target_task, d.variable)
        read = name if name in d.val.after else next(iter(d.val.after), None)
        before, after = (d.val.before[read], d.val.after[read]) if read else (pd.NA, pd.NA)
        right, _ = aligner.item_verdicts(d, d.val, rows=weights)
        right_none, _ = aligner.item_verdicts(d, d.val, interchange=unintervened)
        release_free_heap()
        frames.append(
            pd.DataFrame(
                {
                    "src": aligner.models[d.source].spec.label,
                    "trg": aligner.models[d.target].spec.label,
                    "variable": row_variable(plan.cfg, d.block),
                    "item": range(len(d.val)),
                    "read": read,
                    "before": before,
                    "after": after,
                    "correct": right,
                    "correct_none": right_none,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def write_run(work: Path, plan: Plan, aligner: Aligner, fingerprint: dict, rows: pd.DataFrame) -> None:
    payload = {
        "format": ALIGNMENT_FORMAT,
        "fingerprint": fingerprint,
        "config": OmegaConf.to_container(plan.cfg, resolve=True),
        "models": [m.spec.label for m in aligner.models],
        "functions": {k: v.detach().cpu() for k, v in aligner.functions.state_dict().items()},
    }
    store.save_torch(work / "alignment.pt", payload)
    store.write_text(work / "config.yaml", OmegaConf.to_yaml(plan.cfg, resolve=True))
    store.write_text(work / "curve.csv", _csv(pd.DataFrame(aligner.curve)))
    store.write_text(work / "items.csv", _csv(item_rows(plan, aligner)))
    store.write_text(work / "iia.csv", _csv(rows))


def read_alignment(path: Path) -> dict:
    """The contents of an alignment.pt, checked."""
    keys = {"fingerprint": dict, "config": dict, "models": list, "functions": dict}
    return store.load_checked(path, ALIGNMENT_FORMAT, "alignment", "refit with force=true", keys)
