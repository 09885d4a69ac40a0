"""Transformer next-token model (docs/METHODS.md § Models and training): 2 pre-norm layers, 1 head, rotary
position embeddings, FFN 4·width, causal mask, then a final LayerNorm and the readout MLP.

No learned position embedding: RoPE rotates queries and keys by position, so attention sees only
relative offsets. The hidden site is the residual stream after layer `hidden_layer` (1 of 2):
the output of `blocks.0`. The alignment engine's fast path for it is continuation/transformer.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mas_cli.config import is_int, positive_int, require
from mas_cli.models.base import Readout, SequenceModel, check_readout


@dataclass
class TransformerConfig:
    vocab_size: int
    width: int
    layers: int
    ffn_mult: int  # the FFN's hidden width, in multiples of width
    readout_mult: int
    dropout: float  # readout only, as in the RNNs
    rope_base: float
    hidden_layer: int  # the hidden site is the residual after this many layers

    @staticmethod
    def check(settings) -> None:
        check_readout(settings)
        require(settings.width % 2 == 0, f"arch.width must be even for rotary embeddings, got {settings.width}")
        positive_int(settings.layers, "arch.layers")
        require(
            is_int(settings.hidden_layer) and 0 < settings.hidden_layer < settings.layers,
            f"arch.hidden_layer must be between 1 and arch.layers - 1 ({settings.layers - 1})",
        )


def rotate(x: torch.Tensor, base: float, positions: torch.Tensor | None = None) -> torch.Tensor:
    """Rotary embedding of x [B, L, D]: pairs (x_i, x_{i+D/2}) turn by angle pos·base^(-2i/D).
    Positions are 0..L-1 unless given ([L] or per row [B, L])."""
    length, dim = x.shape[-2], x.shape[-1]
    if positions is None:
        positions = torch.arange(length, device=x.device)
    freqs = base ** (-torch.arange(0, dim, 2, device=x.device, dtype=torch.float32) / dim)
    angles = positions.to(torch.float32)[..., None] * freqs  # [L, D/2] or [B, L, D/2]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)  # [L, D/2]
    first, second = x.chunk(2, dim=-1)
    return torch.cat([first * cos - second * sin, first * sin + second * cos], -1)


class Block(nn.Module):
    """x + attn(ln(x)), then x + mlp(ln(x)); one head of width `width`."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        w = config.width
        self.rope_base = config.rope_base
        self.ln_attn = nn.LayerNorm(w)
        self.qkv = nn.Linear(w, 3 * w)
        self.proj = nn.Linear(w, w)
        self.ln_mlp = nn.LayerNorm(w)
        self.mlp = nn.Sequential(nn.Linear(w, config.ffn_mult * w), nn.GELU(), nn.Linear(config.ffn_mult * w, w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.ln_attn(x)).chunk(3, dim=-1)  # each [B, L, W]
        q, k = rotate(q, self.rope_base), rotate(k, self.rope_base)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # fused kernel
        x = x + self.proj(attended)
        return x + self.mlp(self.ln_mlp(x))


class TransformerModel(SequenceModel):
    Config = TransformerConfig

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.embedding = nn.Embedding(config.vocab_size, w)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.ln_final = nn.LayerNorm(w)
        self.readout = Readout(w, config.readout_mult * w, config.vocab_size, config.dropout)

    def site_paths(self) -> dict[str, str]:
        return {"embed": "embedding", "hidden": f"blocks.{self.config.hidden_layer - 1}"}

    def below_site(self, x: torch.Tensor) -> torch.Tensor:
        """The residual stream at the hidden site from input embeddings x [B, L, W]."""
        for block in self.blocks[: self.config.hidden_layer]:
            x = block(x)
        return x

    def above_site(self, x: torch.Tensor) -> torch.Tensor:
        """Readout inputs [B, L, W] from the residual stream at the hidden site."""
        for block in self.blocks[self.config.hidden_layer :]:
            x = block(x)
        return self.ln_final(x)

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.above_site(self.below_site(self.embedding(tokens)))

    def features_from_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.above_site(self.below_site(embeddings))

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.below_site(self.embedding(tokens))  # [B, L, W] residual after layer 1
