"""The interchange intervention (SPEC §5) and what the target computes after it.

    h_t' = A_t⁻¹( (1 − M_k) ⊙ A_t(h_t) + M_k ⊙ A_s(h_s) )

With orthogonal A = Q and M_k the first k coordinates, this is h_t + Q_t[:k]ᵀ(Q_s[:k] h_s − Q_t[:k] h_t):
only the k aligned rows of each matrix are needed, which is what `swap` computes.
"""

from __future__ import annotations

import torch

from mas_cli.align.data import Batch
from mas_cli.align.functions import OrthogonalAlignment
from mas_cli.models import SequenceModel
from mas_cli.models.base import RecurrentModel


def swap(h_target: torch.Tensor, h_source: torch.Tensor, rows_target: torch.Tensor, rows_source: torch.Tensor):
    """h_t' for [..., d_t] and [..., d_s] vectors, given the k aligned rows [k, d] of each Q."""
    return h_target + (h_source @ rows_source.T - h_target @ rows_target.T) @ rows_target


def interchange(h_target, h_source, a_target: OrthogonalAlignment, a_source: OrthogonalAlignment, k: int):
    """The formula as written, through the full alignment space (slow; for tests and clarity)."""
    z_target, z_source = a_target(h_target), a_source(h_source)
    mask = torch.zeros(z_target.shape[-1], dtype=z_target.dtype, device=z_target.device)
    mask[:k] = 1
    z_source = torch.nn.functional.pad(z_source, (0, max(z_target.shape[-1] - z_source.shape[-1], 0)))
    return a_target.inverse((1 - mask) * z_target + mask * z_source[..., : z_target.shape[-1]])


def scored_logits(
    target: SequenceModel,
    source: SequenceModel,
    batch: Batch,
    rows_target: torch.Tensor,
    rows_source: torch.Tensor,
    site: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [P, V], labels [P]) at the scored predictions of the intervened target.

    The readout runs only where a prediction is scored (the response phase after τ)."""
    if site == "hidden":
        state = swap(batch.target_state, batch.source_state, rows_target, rows_source)
        if isinstance(target, RecurrentModel):
            features = target.continue_features(state, batch.inputs)  # [B, 1 + S, F]
        else:
            features = target.features_above_site(state, batch.residuals, batch.tau)  # [B, L, F]
    else:  # embed: every position 0..τ of the target takes the swap (source at the same positions)
        e_target, e_source = target.embed(batch.inputs), source.embed(batch.source_tokens)
        positions = torch.arange(e_target.shape[1], device=e_target.device)
        up_to_tau = (positions[None, :] <= batch.tau[:, None])[..., None]
        embeddings = torch.where(up_to_tau, swap(e_target, e_source, rows_target, rows_source), e_target)
        features = target.features_from_embeddings(embeddings)
    scored = batch.labels >= 0
    return target.readout(features[scored]), batch.labels[scored]
