"""Which continuation a model gets at a site: the zoo's fast path where one exists, the generic
hook path otherwise. The one place that asks what kind of model it holds: every other module
works through the Continuation it is given."""

from __future__ import annotations

from mas_cli.continuation.generic import Continuation
from mas_cli.continuation.recurrent import RecurrentContinuation
from mas_cli.continuation.transformer import TransformerContinuation
from mas_cli.models.base import RecurrentModel
from mas_cli.models.transformer import TransformerModel

OWN_SITES = ("hidden", "embed")  # the fast paths know the zoo's named sites only


def continuation_for(model, site: str, fast: bool = True) -> Continuation:
    """The continuation of `model` at `site`; `fast=False` forces the generic hook path (the
    reference the fast paths are tested against)."""
    if fast and site in OWN_SITES:
        if isinstance(model, RecurrentModel):
            return RecurrentContinuation(model, site)
        if isinstance(model, TransformerModel):
            return TransformerContinuation(model, site)
    return Continuation(model, site)
