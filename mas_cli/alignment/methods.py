"""The alignment methods (docs/METHODS.md § MAS): one engine, different settings, one table.

Each entry says which directions a method trains, whether the target's own aligned coordinates
are kept (MAS) or discarded (stitching's zero mask), which directions learn from the latent loss
instead of behaviour, its default k, how many models it takes and how `mas pipeline` forms its
fits. The engine, the run planner and the pipeline all read this table; nothing else lists
methods.

    mas             every chosen ordered direction among m ≥ 2 models, trained jointly
    das             one model aligned with itself (MAS with m = 1)
    stitch          model stitching a → b with the zero mask, full width unless k is given
    unimas          behaviour trained only into b: directions a → b and b → b
    clmas           MAS whose directions into a model whose behaviour may not be used
                    (cl.directions, default every direction into the last model) learn from the
                    counterfactual latent loss instead (latents.py)
    accessible_only CLMAS's ablation: those directions get no training signal at all (cl.eps = 0)
    latent_stitch   stitching a → b at full width, trained with the latent loss only
"""

from __future__ import annotations

from dataclasses import dataclass

Pair = tuple[int, int]


@dataclass(frozen=True)
class Method:
    name: str
    title: str  # how tables and plots name it
    models: tuple[int, int | None]  # fewest and most models (None: any number)
    fixed_pairs: tuple[Pair, ...] | None = None  # its (source, target) directions; None: the `directions` setting
    zero_mask: bool = False  # the target's own aligned coordinates are discarded (h' = A_t⁻¹(M_k ⊙ A_s(h_s)))
    latent: str | None = None  # directions trained with the latent loss: "chosen" (cl.directions) | "all" | None
    latent_weight: float | None = None  # a fixed weight of the latent loss (None: cl.eps)
    default_k: int | str = 16  # k when left unset; "full" = the smallest site width
    default_swap: str = "count"  # swap when left unset (CLMAS: the whole state, docs/BENCHMARKS.md § CLMAS)
    one_variable: bool = False  # refuses several swap variables and the null block
    fits: str = "ordered_pairs"  # what `mas pipeline` fits: "groups" | "each" (one model) | "ordered_pairs"

    def describe_models(self) -> str:
        low, high = self.models
        if high == low:
            return {1: "one model", 2: "two models, a=<source> b=<target>"}[low]
        return f"{low} models or more"


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("mas", "MAS", (2, None), fits="groups"),
        Method("das", "DAS", (1, 1), fits="each"),
        Method("stitch", "stitching", (2, 2), ((0, 1),), zero_mask=True, default_k="full", one_variable=True),
        Method("unimas", "uniMAS", (2, 2), ((0, 1), (1, 1))),
        # CLMAS swaps the whole causal state unless told otherwise, as the reference does: its
        # latent loss then pulls toward a natural state matched on every variable, and closes
        # three quarters of the gap to MAS instead of two fifths (docs/BENCHMARKS.md § CLMAS)
        Method("clmas", "CLMAS", (2, None), latent="chosen", default_swap="full", one_variable=True),
        Method(
            "accessible_only",
            "accessible only",
            (2, None),
            latent="chosen",
            latent_weight=0.0,
            default_swap="full",
            one_variable=True,
        ),
        Method(
            "latent_stitch",
            "latent stitching",
            (2, 2),
            ((0, 1),),
            zero_mask=True,
            latent="all",
            default_k="full",
            one_variable=True,
        ),
    )
}


def resolve_method(name: str, n_models: int, cl_eps: float) -> str:
    """The method a run really is: MAS over one model is DAS, and CLMAS whose latent loss weighs
    nothing is its accessible-only ablation (its rows say so)."""
    if name == "mas" and n_models == 1:
        return "das"
    if name == "clmas" and cl_eps == 0:
        return "accessible_only"
    return name
