"""The language-model case (`data=continuation`, mas_cli/data/continuation.py) on two tiny
GPT-2s saved with their tokenizer: each model's greedy continuation is HuggingFace's own
`generate` (the oracle), an item's label is the source's next token, a model left alone predicts
its own continuation (iia_none = 1 within a model), the command runs offline and refuses a fit
once a weight file changed, and models that tokenise differently are refused in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mas_cli.errors import ConfigError
from tests.conftest import result_files, run_cli

WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "under", "mat", "rug"]
WORDS += ["big", "small", "red", "blue", "and", "then"]
NEW = 6


def tokenizer(words=WORDS):
    """A word-level tokenizer built here (nothing downloaded)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(["[UNK]", *words])}
    found = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    found.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=found, unk_token="[UNK]")


def save_gpt2s(tmp_path, words=WORDS) -> list:
    """Two tiny GPT-2s of random weights (seeds 0, 1), each saved with the tokenizer."""
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_embd=16, n_layer=2, n_head=2, n_positions=64, vocab_size=len(words) + 1)
    folders = []
    for seed in (0, 1):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = transformers.AutoModelForCausalLM.from_config(config)
        folder = tmp_path / f"gpt{seed}"
        model.save_pretrained(folder)
        tokenizer(words).save_pretrained(folder)
        folders.append(folder)
    return folders


def prompts(tmp_path, n=20):
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(WORDS, size=rng.integers(3, 7))) for _ in range(n)]
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, lines


def test_continuations_are_greedy_and_labels_are_the_source_next_token(tmp_path):
    transformers = pytest.importorskip("transformers")
    from omegaconf import OmegaConf

    from mas_cli.checkpoints import load_checkpoint
    from mas_cli.data.continuation import continuation_source, with_texts

    folders = save_gpt2s(tmp_path)
    path, lines = prompts(tmp_path)
    cfg = OmegaConf.create({"data": {"texts": str(path), "new_tokens": NEW}, "paths": {"root": str(tmp_path / "o")}})
    models = with_texts(cfg, [load_checkpoint(f"hf:{f}", "text") for f in folders])
    draw = continuation_source(cfg, models)
    words = tokenizer()
    for source, target in ((0, 1), (1, 0), (0, 0)):
        plain = transformers.AutoModelForCausalLM.from_pretrained(folders[source], local_files_only=True)
        cf = draw(models[source], models[target], "full", 200, np.random.default_rng(1), "val")
        for row in range(len(cf)):
            tau, tokens = int(cf.tau[row]), cf.tokens[row]
            prompt = _prompt_of(tokens, lines, words)
            ids = torch.tensor([words(lines[prompt])["input_ids"]])
            generated = plain.generate(ids, max_new_tokens=NEW, do_sample=False, pad_token_id=0)[0].tolist()
            assert tokens[: tau + 2].tolist() == generated[: tau + 2]  # prompt + the source's own continuation
            assert np.flatnonzero(cf.label_mask[row]).tolist() == [tau]  # one label: the token after τ
            assert len(ids[0]) - 1 <= tau < len(ids[0]) - 1 + NEW and prompt % 5 == 4  # val prompts only


def _prompt_of(tokens, lines, words) -> int:
    """Which prompt an item continues (the longest prompt its tokens start with)."""
    found = [
        i
        for i, line in enumerate(lines)
        if tokens[: len(words(line)["input_ids"])].tolist() == words(line)["input_ids"]
    ]
    return max(found, key=lambda i: len(words(lines[i])["input_ids"]))


def test_the_command_fits_offline_and_refuses_a_fit_of_changed_weights(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    from safetensors.torch import load_file, save_file

    folders = save_gpt2s(tmp_path)
    path, _ = prompts(tmp_path)
    root = tmp_path / "out"
    args = [f"a=hf:{folders[0]}", f"b=hf:{folders[1]}", "data=continuation", f"data.texts={path}", "budget=smoke"]
    args += [f"paths.root={root}"]  # the command as it stands: the hidden site, k 16 of 16
    env = {"HF_HUB_OFFLINE": "1"}
    done = run_cli("align", *args, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    (iia,) = result_files(root)
    assert "-texts_prompts" in iia.parent.parent.name
    rows = pd.read_csv(iia)
    val = rows[rows.split == "val"].set_index(["src", "trg"])
    a, b = "text/local_gpt0/0", "text/local_gpt1/0"
    assert val.loc[(a, a), "iia_none"] == 1.0 and val.loc[(b, b), "iia_none"] == 1.0  # a model continues itself
    assert val.loc[(a, b), "iia_none"] < 1.0  # random models disagree
    assert len([p for p in root.glob("continuations/*/*") if p.is_symlink()]) == 2  # one entry per model
    weights = folders[1] / "model.safetensors"
    tensors = load_file(weights)
    tensors["transformer.wte.weight"][0, 0] += 1.0
    save_file(tensors, weights, metadata={"format": "pt"})
    again = run_cli("align", *args, cwd=tmp_path, env=env)
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert "other weights of text/local_gpt1/0" in again.stderr and "force=true" in again.stderr


def test_models_that_tokenise_differently_are_refused(tmp_path):
    pytest.importorskip("transformers")
    from omegaconf import OmegaConf

    from mas_cli.checkpoints import load_checkpoint
    from mas_cli.data.continuation import with_texts

    first = save_gpt2s(tmp_path / "one")[0]
    other = save_gpt2s(tmp_path / "two", words=list(reversed(WORDS)))[0]
    path, _ = prompts(tmp_path)
    cfg = OmegaConf.create({"data": {"texts": str(path), "new_tokens": NEW}})
    models = [load_checkpoint(f"hf:{f}", "text") for f in (first, other)]
    with pytest.raises(ConfigError, match=r"tokenise prompt 1 differently; data=continuation needs models that share"):
        with_texts(cfg, models)
    zoo_like = load_checkpoint(f"hf:{first}", "text")
    zoo_like.task = object()
    with pytest.raises(ConfigError, match="needs language models with a tokenizer"):
        with_texts(cfg, [zoo_like])


def test_bfloat16_models_are_aligned_by_float32_maps(tmp_path):
    """runtime dtype=bfloat16 holds the checkpoints in bfloat16; what the maps read is cast to
    float32 and the maps are trained and stored in float32."""
    pytest.importorskip("transformers")
    import mas_cli as mas
    from mas_cli.alignment.job import read_alignment
    from mas_cli.checkpoints import load_checkpoint

    folders = save_gpt2s(tmp_path)
    path, _ = prompts(tmp_path)
    assert (
        load_checkpoint(f"hf:{folders[0]}", "text", "bfloat16").model.inner.transformer.wte.weight.dtype
        == torch.bfloat16
    )
    models = [f"hf:{f}" for f in folders]
    overrides = [f"data.texts={path}", f"data.new_tokens={NEW}"]
    fit = mas.align(
        models, root=tmp_path / "o", budget="smoke", data="continuation", dtype="bfloat16", overrides=overrides
    )
    assert fit.run_dir.parent.name.endswith("-budget_smoke-dtype_bfloat16")
    functions = read_alignment(fit.run_dir / "alignment.pt")["functions"]
    assert functions and all(t.dtype == torch.float32 for t in functions.values() if t.is_floating_point())
    assert set(fit.iia.dtype) == {"bfloat16"} and fit.iia.iia.between(0, 1).all()


def test_zoo_models_and_a_missing_prompt_file_are_refused_before_anything_is_written(tmp_path):
    path, _ = prompts(tmp_path)
    root = tmp_path / "out"
    for args, said in (
        (["a=gru", "b=lstm", f"data.texts={path}"], "gru is a zoo model: give hf:<dir> folders"),
        (["a=gru", "b=lstm"], "data=continuation needs data.texts=<file>"),
        (["a=gru", "b=lstm", f"data.texts={tmp_path}/none.txt"], "no such file"),
    ):
        done = run_cli("align", "data=continuation", *args, f"paths.root={root}", cwd=tmp_path)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert said in done.stderr
    assert not root.exists()
