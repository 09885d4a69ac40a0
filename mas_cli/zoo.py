"""The frozen models a command reads (`mas align`, `mas similarity`, the Python API): found in the
model store, trained on demand when missing (the same code path as `mas train`), checked (format,
criterion) and loaded with every parameter frozen.

Nothing here imports torch until a model is trained or loaded, so planning and refusals are
immediate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from mas_cli import seeds, store
from mas_cli.checkpoints import is_checkpoint
from mas_cli.composition import compose_config, inherit_runtime
from mas_cli.config import validate_train
from mas_cli.console import console
from mas_cli.errors import ConfigError, StoreError
from mas_cli.specs import ModelSpec, parse_spec
from mas_cli.tasks import Task, task_from_config


@dataclass(frozen=True)
class Described:
    """What the checks need to know about a model (trained or not yet)."""

    label: str
    width: int  # the site's width
    variables: tuple[str, ...]  # the swappable variables of the run's causal model


def variables_of(task: Task, causal_model: str | None, label: str) -> tuple[str, ...]:
    """The swappable variables of the hypothesis `causal_model` (None: the task's own) for a task."""
    try:
        return task.causal_model(causal_model).variables
    except ValueError as exc:
        raise ConfigError(f"causal_model={causal_model} does not fit {label}: {exc}") from None


@dataclass
class FrozenModel:
    spec: ModelSpec
    entry: Path | None
    model: object  # a models.SequenceModel in eval mode, requires_grad False
    task: Task  # the task the model was trained on (its own vocabulary and causal model)
    metrics: dict  # the store entry's metrics.json, including the training fingerprint
    weights: str = ""  # store.weights_digest of its weights: what a result was computed from
    _continuations: dict = field(default_factory=dict, repr=False)

    def at(self, site: str):
        """How alignment reads and continues this model at `site` (continuation/: the zoo's fast
        path where one exists, the generic hook path otherwise), made once per site."""
        if site not in self._continuations:
            from mas_cli.continuation import continuation_for

            self._continuations[site] = continuation_for(self.model, site)
        return self._continuations[site]

    def identity(self) -> dict:
        """What a result computed from this model records of it (alignment and similarity
        fingerprints): its label, its training settings and the digest of its weights."""
        return {"model": self.spec.label, "trained": self.metrics.get("fingerprint"), "weights": self.weights}


def site_width_of(model, site: str, spec: ModelSpec) -> int:
    """The width of `site` in `model` (a site the model lacks: one line naming the model)."""
    from mas_cli.continuation import continuation_for

    try:
        return continuation_for(model, site).width()
    except ConfigError as exc:
        raise ConfigError(f"{spec.label}: {exc}") from None


def refuse_changed_models(place: Path, found: dict, models: list[FrozenModel], redo: str) -> None:
    """A result whose models were retrained or replaced since it was computed is refused in one
    line naming the first such model (found: the result's stored fingerprint)."""
    recorded = {m.get("model"): m.get("weights") for m in found.get("models", []) if isinstance(m, dict)}
    for m in models:
        if recorded.get(m.spec.label) != m.weights:
            raise ConfigError(
                f"{place} was computed from other weights of {m.spec.label} (retrained or replaced since); "
                f"add force=true to {redo} it, or choose another paths.root"
            )


def train_command(spec: ModelSpec) -> str:
    return f"mas train task={spec.task} arch={spec.arch} seed={spec.seed}"


class ModelsOnDemand:
    """Training configs for models the store lacks: the `train` config for the spec's task, arch
    and seed, with the parent run's budget, paths and device (and any `train_overrides`)."""

    def __init__(self, cfg: DictConfig, train_overrides=None):
        self.cfg = cfg
        self.train_overrides = list(cfg.train_overrides if train_overrides is None else train_overrides)
        self._train_configs: dict[ModelSpec, DictConfig] = {}  # Hydra composition is slow: once per model
        self._widths: dict[tuple[ModelSpec, str], int] = {}  # a fresh model built once per model and site

    def train_config(self, spec: ModelSpec) -> DictConfig:
        if spec not in self._train_configs:
            overrides = [f"task={spec.task}", f"arch={spec.arch}", f"seed={spec.seed}", *self.train_overrides]
            try:
                train_cfg = compose_config("train", overrides)
            except ConfigError as exc:
                raise ConfigError(f"cannot compose the training config of {spec.label} ({exc})") from None
            inherit_runtime(self.cfg, train_cfg)
            validate_train(train_cfg)
            self._train_configs[spec] = train_cfg
        return self._train_configs[spec]

    def task(self, spec: ModelSpec) -> Task:
        """The task a model is (or will be) trained on."""
        return task_from_config(self.train_config(spec).task)

    def describe(self, spec: ModelSpec, site: str, causal_model: str | None = None) -> Described:
        """What the checks need about a model before it exists: label, the width of `site` (read
        off a fresh model of its config: a site it lacks is refused here, before any training),
        and the variables of `causal_model` (None: the task's own)."""
        task = self.task(spec)
        if (spec, site) not in self._widths:
            import torch

            from mas_cli.models import build_model

            arch = self.train_config(spec).arch
            with torch.random.fork_rng():  # a throwaway model: leave the caller's random state alone
                fresh = build_model(arch.name, len(task.vocab), arch)
            self._widths[spec, site] = site_width_of(fresh, site, spec)
        return Described(spec.label, self._widths[spec, site], variables_of(task, causal_model, spec.label))

    def train(self, spec: ModelSpec) -> None:
        from mas_cli.training import train_model

        result = train_model(self.train_config(spec))
        if not result.metrics["trained_to_criterion"]:
            console.print(f"[yellow]warning:[/] {spec.label} did not reach the training criterion")

    def ensure(self, specs: list[ModelSpec]) -> list[Path]:
        """The store entry of every spec, training the missing ones (in order)."""
        return ensure_trained(specs, self.cfg.paths.root, self.cfg.auto_train, self.train)


def ensure_trained(
    specs: list[ModelSpec], root: str | Path, auto_train: bool, train: Callable[[ModelSpec], None]
) -> list[Path]:
    """The store entry of every spec, training the missing ones with `train` (in order)."""
    entries = [store.model_entry(root, s.task, s.arch, s.seed) for s in specs]
    missing = [s for s, e in zip(specs, entries) if not e.complete()]
    if missing and not auto_train:
        raise ConfigError(
            f"{missing[0].label} is not in the model store under {root}; run `{train_command(missing[0])}` "
            "first, or drop auto_train=false"
        )
    for spec in missing:  # specs are unique (plan_alignment refuses repeats)
        console.print(f"[bold]{spec.label}[/] is not in the model store: training it")
        train(spec)
    return [e.path for e in entries]


def model_to_inspect(cfg: DictConfig):
    """(model, how to name it) for `mas sites`: the store's `cfg.model`, or a fresh `cfg.arch`."""

    from mas_cli.models import build_model

    if is_checkpoint(cfg.model):  # a local HuggingFace folder
        from mas_cli.checkpoints import load_checkpoint  # (wrapped.py, under it, imports this module)

        found = load_checkpoint(cfg.model, cfg.task.name)
        return found.model, f"{found.spec.label} ({cfg.model.removeprefix('hf:')})"
    if cfg.model is not None:
        spec = parse_spec(cfg.model, cfg.task.name)
        entry = store.model_dir(cfg.paths.root, spec.task, spec.arch, spec.seed)
        return load_frozen(spec, entry, "cpu", allow_undertrained=True).model, f"{spec.label} (trained, {entry})"
    seeds.seed_torch(cfg.seed)
    task = task_from_config(cfg.task)
    model = build_model(cfg.arch.name, len(task.vocab), cfg.arch).eval()
    return model, f"a fresh {cfg.arch.name} (vocabulary of {task.name}: {len(task.vocab)} tokens)"


def load_frozen(spec: ModelSpec, entry: Path, device, allow_undertrained: bool) -> FrozenModel:
    """A store entry's model, its checksums verified, checked and frozen, on `device`."""
    from mas_cli.models import build_model

    redo = f"retrain it with `{train_command(spec)} force=true`"
    folder = store.Entry(entry, redo=redo, root=entry.parents[3]).current()
    if folder is None:
        raise StoreError(
            f"{spec.label} is not in the model store under {entry.parents[3]}; run `{train_command(spec)}`"
        )
    payload = store.load_model_file(folder / "model.pt")
    metrics = store.read_metrics(folder)
    if not metrics.get("trained_to_criterion") and not allow_undertrained:
        raise ConfigError(
            f"{spec.label} did not reach its training criterion (val task acc {metrics.get('val_task_acc')}); "
            f"retrain it with a larger budget (`{train_command(spec)} budget=paper force=true`) "
            "or add allow_undertrained=true"
        )
    try:
        if payload["arch"] != spec.arch:
            raise ValueError(f"holds a {payload['arch']}")
        model = build_model(payload["arch"], len(payload["vocab"]), payload["config"])
        store.load_weights(folder, payload, model)
        task = task_from_config(payload["task"])
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise StoreError(
            f"{entry / 'model.pt'} does not hold a usable {spec.arch} model ({type(exc).__name__}); "
            f"retrain it with `{train_command(spec)} force=true`"
        ) from None
    model.eval().requires_grad_(False).to(device)
    return FrozenModel(spec, entry, model, task, metrics, store.weights_digest(model.state_dict()))
