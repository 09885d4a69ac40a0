"""Transformer next-token model (SPEC §4): 2 pre-norm layers, 1 head, rotary position embeddings,
FFN 4·width, causal mask, then a final LayerNorm and the readout MLP.

No learned position embedding: RoPE rotates queries and keys by position, so attention sees only
relative offsets. The hidden site is the residual stream after layer `hidden_layer` (1 of 2).
Because layer-1 outputs at positions > τ do not depend on position τ, an intervention at τ only
has to re-run the layers above the site.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mas_cli.models.base import Readout, SequenceModel


@dataclass
class TransformerConfig:
    vocab_size: int
    width: int = 128
    layers: int = 2
    ffn_mult: int = 4
    readout_mult: int = 4
    dropout: float = 0.5  # readout only, as in the RNNs
    rope_base: float = 10000.0
    hidden_layer: int = 1  # the hidden site is the residual after this many layers


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
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.embedding = nn.Embedding(config.vocab_size, w)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.ln_final = nn.LayerNorm(w)
        self.readout = Readout(w, config.readout_mult * w, config.vocab_size, config.dropout)

    def _lower(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks[: self.config.hidden_layer]:
            x = block(x)
        return x

    def _upper(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks[self.config.hidden_layer :]:
            x = block(x)
        return self.ln_final(x)

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        return self._upper(self._lower(self.embedding(tokens)))

    def features_from_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self._upper(self._lower(embeddings))

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        return self._lower(self.embedding(tokens))  # [B, L, W] residual after layer 1

    def features_above_site(self, state: torch.Tensor, residuals: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """Readout inputs [B, L, W] when the residual at tau[b] becomes state[b] ([B, W]): only
        the layers above the site run again."""
        at_tau = F.one_hot(tau, residuals.shape[1]).to(residuals.dtype)[..., None]  # [B, L, 1]
        return self._upper(residuals * (1 - at_tau) + state[:, None] * at_tau)

    def scored_features_above_site(
        self, state: torch.Tensor, residuals: torch.Tensor, tau: torch.Tensor, scored: torch.Tensor
    ) -> torch.Tensor:
        """Readout inputs [P, W] at the scored continuation columns (scored [B, S]; column j is
        position τ + j) when the residual at τ becomes state [B, W].

        Positions before τ do not change (the mask is causal), so with one layer above the site
        only the positions from τ on are queried and only the scored ones go through the MLP;
        keys and values come from the stored residuals, except at τ. What the stored residuals
        give runs without autograd, so backward computes gradients only for what the state feeds,
        not for every position's key and value. With more layers above the site the whole upper
        stack runs again (`features_above_site`)."""
        if self.config.layers != self.config.hidden_layer + 1:
            positions = (tau[:, None] + torch.arange(scored.shape[1], device=tau.device)).clamp(
                max=residuals.shape[1] - 1
            )
            full = self.features_above_site(state, residuals, tau)
            return full.gather(1, positions[..., None].expand(-1, -1, full.shape[-1]))[scored]
        block, base = self.blocks[self.config.hidden_layer], self.config.rope_base
        length, width = residuals.shape[1], residuals.shape[2]
        positions = tau[:, None] + torch.arange(scored.shape[1], device=tau.device)  # [B, S]
        w_q, w_k, w_v = block.qkv.weight.chunk(3)
        b_q, b_k, b_v = block.qkv.bias.chunk(3)
        # The later columns' queries and every position's key and value, from the stored residuals
        later_rows = positions[:, 1:].clamp(max=length - 1)[..., None].expand(-1, -1, width)  # [B, S-1, W]
        with torch.no_grad():
            later = residuals.gather(1, later_rows)
            normed = block.ln_attn(residuals)
            q_later = rotate(F.linear(normed.gather(1, later_rows), w_q, b_q), base, positions[:, 1:])
            keys, values = rotate(F.linear(normed, w_k, b_k), base), F.linear(normed, w_v, b_v)  # [B, L, W]
            later_scores = q_later @ keys.transpose(1, 2)  # [B, S-1, L]
            kept_value = values[torch.arange(len(tau), device=tau.device), tau]  # the value at τ it replaces
        # Where the state enters: its own query, its key and value at τ (and its residual, below)
        q_tau, k_tau, v_tau = F.linear(block.ln_attn(state), block.qkv.weight, block.qkv.bias).chunk(3, dim=-1)
        q_tau, k_tau = (rotate(x[:, None], base, tau[:, None])[:, 0] for x in (q_tau, k_tau))  # [B, W]
        scores = torch.cat([(keys @ q_tau[..., None]).transpose(1, 2), later_scores], 1)  # [B, S, L]
        on_tau = torch.cat([(q_tau * k_tau).sum(-1, keepdim=True), (q_later @ k_tau[..., None])[..., 0]], 1)
        tau_column = tau[:, None, None].expand(-1, scored.shape[1], 1)  # [B, S, 1]: key position τ
        scores = scores.scatter(2, tau_column, on_tau[..., None])
        future = torch.arange(length, device=tau.device)[None, None, :] > positions[..., None]  # [B, S, L]
        weights = (scores * width**-0.5).masked_fill(future, float("-inf")).softmax(-1)
        # Σ_l p_l v_l with v_τ replaced: the stored values' sum, plus p_τ (v_τ − the stored v_τ)
        on_tau_weight = weights.gather(2, tau_column)  # [B, S, 1]
        attended = weights @ values + on_tau_weight * (v_tau - kept_value)[:, None]
        x = torch.cat([state[:, None], later], 1)  # column 0 is the intervened site
        h = x[scored] + block.proj(attended[scored])
        return self.ln_final(h + block.mlp(block.ln_mlp(h)))
