"""Pad invariance of the HuggingFace families (GPT-2: learned absolute positions; Llama: RoPE):
each item's logits at its real tokens are the same alone, in a right-padded batch, and in a
left-padded batch, because every call passes the attention mask and the positions
(`padded_inputs`). Tiny models of random weights built from a config; nothing is downloaded."""

from __future__ import annotations

import pytest
import torch

from mas_cli.models.hf import HuggingFaceConfig, HuggingFaceModel, padded_inputs

pytest.importorskip("transformers")
pytestmark = pytest.mark.fast

FAMILIES = {
    "gpt2": {"n_embd": 32, "n_inner": 64, "n_layer": 2, "n_head": 2, "n_positions": 64},
    "llama": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "num_key_value_heads": 2, "max_position_embeddings": 64},
}  # fmt: skip
PAD = 0


def tiny(family: str) -> HuggingFaceModel:
    torch.manual_seed(0)
    config = HuggingFaceConfig(vocab_size=16, family=family, hidden_layer=1, hf=FAMILIES[family])
    return HuggingFaceModel(config).eval()


def items() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [torch.randint(3, 16, (n,), generator=generator) for n in (7, 3, 5)]


def padded(sequences: list[torch.Tensor], left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens [B, L], real [B, L]) with PAD on the right or the left."""
    width = max(len(s) for s in sequences)
    tokens = torch.full((len(sequences), width), PAD)
    real = torch.zeros_like(tokens)
    for row, s in enumerate(sequences):
        columns = slice(width - len(s), width) if left else slice(0, len(s))
        tokens[row, columns], real[row, columns] = s, 1
    return tokens, real


@pytest.mark.parametrize("family", sorted(FAMILIES))
@torch.no_grad()
def test_each_item_predicts_the_same_alone_and_padded_on_either_side(family):
    model = tiny(family)
    alone = [model.hf(**padded_inputs(s[None], torch.ones(1, len(s), dtype=torch.long))).logits[0] for s in items()]
    for left in (False, True):
        tokens, real = padded(items(), left)
        logits = model.hf(**model.inputs(tokens, real)).logits
        for row, expected in enumerate(alone):
            got = logits[row][real[row].bool()]
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    right, _ = padded(items(), left=False)  # the zoo's batches: right-padded, every token attended
    for row, expected in enumerate(alone):
        torch.testing.assert_close(model(right)[row, : len(expected)], expected, atol=1e-5, rtol=1e-5)


def test_positions_count_real_tokens_only():
    tokens, real = padded([torch.tensor([5, 6, 7]), torch.tensor([8])], left=True)
    assert padded_inputs(tokens, real)["position_ids"].tolist() == [[0, 1, 2], [0, 0, 0]]
    assert padded_inputs(tokens, real)["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]


HEADS = FAMILIES | {
    "qwen2": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "num_key_value_heads": 2, "max_position_embeddings": 64},
    "gpt_neox": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                 "max_position_embeddings": 64},
}  # fmt: skip


@pytest.mark.parametrize("family", sorted(HEADS))
@torch.no_grad()
def test_a_split_head_over_the_features_is_the_model_own_logits(family):
    """Alignment runs a wrapped language model to its decoder's last hidden state and its head
    only where a prediction is scored (continuation/generic.py): for every family it splits,
    that is transformers' own forward."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from mas_cli.wrapped import PLAIN_HEADS, WrappedModule

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(family, vocab_size=16, **HEADS[family])).eval()
    wrapped = WrappedModule(model, {"hidden": "lm_head"})
    assert family in PLAIN_HEADS and wrapped.head_after_sites
    tokens, _ = padded(items(), left=False)
    expected = model(**padded_inputs(tokens, torch.ones_like(tokens))).logits
    torch.testing.assert_close(wrapped.readout(wrapped.features(tokens)), expected, atol=1e-5, rtol=1e-5)
