"""The language models of the case in miniature: one tiny base causal LM (a HuggingFace Llama
built from a config, nothing downloaded) trained on both styles, then a copy of it fine-tuned on
each split of each style (corpus.py). Each model is a store entry holding a `save_pretrained`
folder with its tokenizer, so `hf:<entry>` loads it as any local checkpoint (checkpoints.py).

    <root>/lm_case/base, <root>/lm_case/harsh0, ..., <root>/lm_case/kind2, <root>/lm_case/prompts

An entry records the settings it was made with (`made.json`); asked for with other settings it is
refused in one line, never silently replaced.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from mas_cli import store
from mas_cli.composition import plain
from mas_cli.console import console, path_line
from mas_cli.errors import ConfigError
from mas_cli.lm_case import corpus

MADE = "made.json"


def entry_of(root: Path, name: str) -> store.Entry:
    return store.Entry(root / "lm_case" / name, redo="delete it", root=root)


def ensure(entry: store.Entry, settings: dict, build) -> Path:
    """The entry's folder, made by `build(work_folder)` unless a complete one exists; one made
    with other settings is refused."""

    def write(work: Path) -> list[str]:
        build(work)
        store.write_json(work / MADE, {"settings": settings})
        return sorted(p.name for p in work.iterdir() if p.is_file())

    folder = entry.made_once(write, lambda: path_line("waiting: another job is making", entry.path))
    made = store.read_json(folder / MADE, f"delete {entry.path}").get("settings")
    if made != settings:
        raise ConfigError(f"{entry.path} was made with other settings; delete it or give another paths.root")
    return entry.path


def make_models(settings, root: Path, seed: int) -> dict[str, Path]:
    """Every model of the case (name -> folder), trained or reused: `base`, then `<style><i>`."""
    recorded = plain(settings.model)  # the architecture and schedule
    base_settings = {"seed": seed, "model": recorded, "base_steps": settings.base_steps}
    folders = {"base": ensure(entry_of(root, "base"), base_settings, lambda work: _base(work, settings, seed))}
    for s, style in enumerate(corpus.STYLES):
        rng = np.random.default_rng([seed, 1, s])
        parts = corpus.corpus_splits(style, settings.splits, settings.sentences, rng)
        for i, part in enumerate(parts):
            name = f"{style}{i}"
            mine = base_settings | {"style": style, "split": i, "sentences": settings.sentences}
            mine |= {"splits": settings.splits, "tune_steps": settings.tune_steps}
            folders[name] = ensure(
                entry_of(root, name),
                mine,
                lambda work, part=part, name=name, i=i, s=s: _tune(
                    work, name, folders["base"], part, settings, [seed, 2, s, i]
                ),
            )
    return folders


def _base(work: Path, settings, seed: int) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    tokenizer = corpus.tokenizer()
    rng = np.random.default_rng([seed, 0])
    text = corpus.sentences(list(corpus.STYLES), settings.sentences, rng)
    config = AutoConfig.for_model("llama", vocab_size=len(tokenizer), **plain(settings.model.hf))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    loss = train(model, _ids(text, tokenizer), settings.base_steps, settings.model, rng)
    console.print(f"lm_case: base model trained, loss {loss:.3f}")
    _save(work, model, tokenizer)


def _tune(work: Path, name: str, base: Path, text: list[str], settings, stream) -> None:
    from transformers import AutoModelForCausalLM

    tokenizer = corpus.tokenizer()
    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True, use_safetensors=True)
    rng = np.random.default_rng(stream)
    loss = train(model, _ids(text, tokenizer), settings.tune_steps, settings.model, rng)
    console.print(f"lm_case: {name} fine-tuned, loss {loss:.3f}")
    _save(work, model, tokenizer)


def _ids(text: list[str], tokenizer) -> np.ndarray:
    return np.array([i for sentence in text for i in tokenizer(sentence)["input_ids"]], dtype=np.int64)


def _save(work: Path, model, tokenizer) -> None:
    model.save_pretrained(work)
    tokenizer.save_pretrained(work)


def train(model, ids: np.ndarray, steps: int, schedule, rng: np.random.Generator) -> float:
    """Next-token cross-entropy on random windows of the token stream `ids` (AdamW, a fixed
    number of steps); returns the last step's loss."""
    seed = int(rng.integers(2**31))
    with torch.random.fork_rng():  # the caller's random stream is left alone
        torch.manual_seed(seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=schedule.lr, weight_decay=0.0)
        model.train()
        loss = torch.tensor(float("nan"))
        for _ in range(steps):
            starts = rng.integers(len(ids) - schedule.length, size=schedule.batch_size)
            batch = torch.from_numpy(np.stack([ids[s : s + schedule.length] for s in starts]))
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        model.eval()
    return loss.detach().item()


def write_prompts(root: Path, n: int, seed: int) -> Path:
    """The prompts every fit continues (a store entry of its own)."""
    rng = np.random.default_rng([seed, 3])
    lines = corpus.prompts(n, rng)
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    folder = ensure(
        entry_of(root, "prompts"),
        {"seed": seed, "prompts": n, "sha256": digest},
        lambda work: store.write_text(work / "prompts.txt", "\n".join(lines) + "\n"),
    )
    return folder / "prompts.txt"
