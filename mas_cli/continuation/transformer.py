"""The zoo transformer's fast path (`hidden` and `embed` sites), equal to the generic hook path
(tests/test_continuation.py):

hidden  the whole residual stream of the counterfactual input at the site is kept per item
        (`prepare`); a step re-runs only the layers above the site, for positions from τ on,
        the readout only where scored (`scored_features_above_site`)
embed   the target runs on the given embeddings in one pass, the readout only where scored
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mas_cli.continuation.generic import Continuation, Scored, in_chunks
from mas_cli.models.transformer import rotate


class TransformerContinuation(Continuation):
    fast = True

    def width(self) -> int:
        return self.model.config.width

    @torch.no_grad()
    def collect_all(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.embed(tokens) if self.site == "embed" else in_chunks(self.model.hidden_states, tokens)

    @torch.no_grad()
    def collect_at(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if self.site == "embed":
            return self.model.embed(tokens[torch.arange(len(tokens), device=tokens.device), positions])

        def at(part: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
            return self.model.hidden_states(part)[torch.arange(len(part), device=part.device), where]

        return in_chunks(at, tokens, positions)

    def prepare(self, tokens: torch.Tensor, tau: torch.Tensor) -> dict[str, torch.Tensor]:
        """The residual stream at the site, every position, and the site at τ from it."""
        residuals = self.collect_all(tokens)
        return {"residuals": residuals, "target_state": residuals[torch.arange(len(tokens), device=tau.device), tau]}

    def hidden(self, state: torch.Tensor, batch) -> Scored:
        scored = batch.labels >= 0
        features = scored_features_above_site(self.model, state, batch.residuals, batch.tau, scored)
        item, column = scored.nonzero(as_tuple=True)
        return self.model.readout(features), batch.labels[scored], item, column

    def embed(self, embeddings: torch.Tensor, batch) -> Scored:
        scored = batch.labels >= 0
        features = self.model.features_from_embeddings(embeddings)[scored]
        item, column = scored.nonzero(as_tuple=True)
        return self.model.readout(features), batch.labels[scored], item, column


def features_above_site(model, state: torch.Tensor, residuals: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Readout inputs [B, L, W] when the residual at tau[b] becomes state[b] ([B, W]): only
    the layers above the site run again."""
    at_tau = F.one_hot(tau, residuals.shape[1]).to(residuals.dtype)[..., None]  # [B, L, 1]
    return model.above_site(residuals * (1 - at_tau) + state[:, None] * at_tau)


def scored_features_above_site(
    model, state: torch.Tensor, residuals: torch.Tensor, tau: torch.Tensor, scored: torch.Tensor
) -> torch.Tensor:
    """Readout inputs [P, W] at the scored continuation columns (scored [B, S]; column j is
    position τ + j) when the residual at τ becomes state [B, W].

    Positions before τ do not change (the mask is causal), so with one layer above the site
    only the positions from τ on are queried and only the scored ones go through the MLP;
    keys and values come from the stored residuals, except at τ. What the stored residuals
    give runs without autograd, so backward computes gradients only for what the state feeds,
    not for every position's key and value. With more layers above the site the whole upper
    stack runs again (`features_above_site`)."""
    if model.config.layers != model.config.hidden_layer + 1:
        positions = (tau[:, None] + torch.arange(scored.shape[1], device=tau.device)).clamp(max=residuals.shape[1] - 1)
        full = features_above_site(model, state, residuals, tau)
        return full.gather(1, positions[..., None].expand(-1, -1, full.shape[-1]))[scored]
    block, base = model.blocks[model.config.hidden_layer], model.config.rope_base
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
    return model.ln_final(h + block.mlp(block.ln_mlp(h)))
