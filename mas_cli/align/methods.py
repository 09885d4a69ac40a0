"""The alignment methods (SPEC §5): one engine, different settings.

mas            every chosen ordered direction among m models, trained jointly
das            one model aligned with itself (MAS with m = 1)
stitch         model stitching: a → b only, with the zero mask (the target's own aligned
               coordinates are discarded), full width unless k is given
unimas         behaviour trained only into b: directions a → b and b → b
clmas          MAS whose directions into a model whose behaviour may not be used (cl.directions,
               default every direction into the last model) are trained with the counterfactual
               latent loss instead (latents.py); with cl.eps = 0 those directions get no training
               signal at all: the accessible-only ablation (its rows say method=accessible_only)
latent_stitch  stitching a → b at full width, trained with the latent loss only
"""

# Directions between a (index 0) and b (index 1) for the methods that fix them.
FIXED_DIRECTIONS = {"stitch": [(0, 1)], "unimas": [(0, 1), (1, 1)], "latent_stitch": [(0, 1)]}
ZERO_MASK = ("stitch", "latent_stitch")
LATENT_METHODS = ("clmas", "latent_stitch")
FULL_WIDTH_BY_DEFAULT = ("stitch", "latent_stitch")
METHODS = ("mas", "das", "stitch", "unimas", "clmas", "latent_stitch")
