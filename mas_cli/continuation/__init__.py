"""How alignment reaches into a model: its site read at given positions, and the model continued
after the site was replaced (the seam between the method, mas_cli/alignment/, and the models).

    hooks.py       the generic path: forward hooks on a named module of any nn.Module
    sites.py       site names (hidden, embed, layer:<i>, module paths) -> modules; `mas sites`
    generic.py     Continuation: what alignment asks of a model, by the generic path
    recurrent.py   the zoo RNNs' fast path (suffix_kernel.py, suffix_loops.py on the CPU)
    transformer.py the zoo transformer's fast path (only the layers above the site)
    dispatch.py    continuation_for: the fast path where one exists, else the generic one
"""

from mas_cli.continuation.dispatch import continuation_for
from mas_cli.continuation.generic import Continuation

__all__ = ["Continuation", "continuation_for"]
