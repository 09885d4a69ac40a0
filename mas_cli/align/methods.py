"""The alignment methods (SPEC §5): one engine, different settings.

mas      every chosen ordered direction among m models, trained jointly
das      one model aligned with itself (MAS with m = 1)
stitch   model stitching: a → b only, with the zero mask (the target's own aligned
         coordinates are discarded), full width unless k is given
unimas   behaviour trained only into b: directions a → b and b → b
"""

# Directions between a (index 0) and b (index 1) for the methods that fix them.
FIXED_DIRECTIONS = {"stitch": [(0, 1)], "unimas": [(0, 1), (1, 1)]}
ZERO_MASK = ("stitch",)
METHODS = ("mas", "das", *FIXED_DIRECTIONS)
