"""How alignment reads one model at one site and continues it after an interchange: the generic
path, by forward hooks (hooks.py), for any model whose forward maps tokens to logits. The zoo's
fast paths (recurrent.py, transformer.py) override these methods and are tested equal to them.

Two kinds of intervention (the `site` setting):

    embed     every input embedding up to τ is replaced (the source's at the same positions): the
              target runs from position 0 on the given embeddings
    any other the site at τ alone is replaced by the intervened state, and the target continues

Predictions come back only where a label is scored, as (logits [P, V], labels [P], item [P],
column [P]); a model that says `head_after_sites` (its `features` pass every site, its `readout`
is a language model's head) runs its head only at those positions. A label column means what
the item kind says (alignment/items.py): for the embed site column j is position j, for every
other site column j is position τ + j.
"""

from __future__ import annotations

import torch

from mas_cli.continuation.hooks import collect, patched
from mas_cli.continuation.sites import resolve_site, site_module, site_width

Scored = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # logits, labels, item, column
CHUNK = 2000  # rows per forward pass when collecting frozen activations (bounded memory)


@torch.no_grad()
def in_chunks(run, tokens: torch.Tensor, *per_row: torch.Tensor) -> torch.Tensor:
    """run(tokens[part], *per_row[part]) over chunks of CHUNK rows, concatenated."""
    ends = range(0, len(tokens), CHUNK)
    return torch.cat([run(tokens[i : i + CHUNK], *(x[i : i + CHUNK] for x in per_row)) for i in ends])


class Continuation:
    """The generic path for `model` at `site` (a name, `layer:<i>`, or a module path)."""

    fast = False  # the zoo's own paths say True

    def __init__(self, model, site: str):
        self.model, self.site = model, site
        self.ref = resolve_site(model, site)
        self.module = site_module(model, self.ref)
        # A model whose `features` pass every site (a language model: features = the last hidden
        # state, readout = its head) is run to its features; any other by its whole forward.
        self.head_split = bool(getattr(model, "head_after_sites", False))
        self.run = model.features if self.head_split else model

    def width(self) -> int:
        return site_width(self.model, self.ref)

    # ---- reading the frozen model --------------------------------------------------------------
    @torch.no_grad()
    def collect_at(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The site at positions[b] of each row, [N, D] (in chunks of rows)."""
        found = in_chunks(lambda part, at: collect(self.model, self.module, self.ref.port, part, at), tokens, positions)
        return found.float()  # a bfloat16 model's site, as the float32 maps read it

    @torch.no_grad()
    def collect_all(self, tokens: torch.Tensor) -> torch.Tensor:
        """The site at every position, [N, L, D]."""
        return in_chunks(lambda part: collect(self.model, self.module, self.ref.port, part), tokens).float()

    def prepare(self, tokens: torch.Tensor, tau: torch.Tensor) -> dict[str, torch.Tensor]:
        """What a target's items keep for a hidden-site continuation (alignment/items.py's
        HiddenItems fields): here the site at τ and the whole counterfactual input."""
        return {"target_state": self.collect_at(tokens, tau), "tokens": tokens}

    # ---- continuing after an interchange ---------------------------------------------------------
    def hidden(self, state: torch.Tensor, batch) -> Scored:
        """The site at τ becomes state [N, D]; the model runs on the whole input with it."""
        rows = torch.arange(len(state), device=state.device)
        features = patched(self.run, self.module, self.ref.port, batch.tokens, rows, batch.tau, state)
        scored = batch.labels >= 0
        item, column = scored.nonzero(as_tuple=True)
        return self.logits(features, item, batch.tau[item] + column), batch.labels[scored], item, column

    def embed(self, embeddings: torch.Tensor, batch) -> Scored:
        """The site (the input embedding) at every position becomes embeddings [N, C, D]."""
        scored = batch.labels >= 0
        every = torch.ones(embeddings.shape[:2], dtype=torch.bool, device=embeddings.device)
        rows, positions = every.nonzero(as_tuple=True)
        features = patched(
            self.run, self.module, self.ref.port, batch.inputs, rows, positions, embeddings[rows, positions]
        )
        item, column = scored.nonzero(as_tuple=True)
        return self.logits(features, item, column), batch.labels[scored], item, column

    def logits(self, features: torch.Tensor, item: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """The logits at the scored positions ([P, V], in fp32 whatever the model's dtype); with a
        model's head split off, the head runs only there (over every position it would be [N, L, V],
        most of it never scored)."""
        found = features[item, position]
        return (self.model.readout(found) if self.head_split else found).float()
