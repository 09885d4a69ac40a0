"""What an alignment swaps: the variables (one k-block each, and the null block), cross-task
variable maps."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from mas_cli.alignment.settings import swap_map, swapped
from mas_cli.tasks.causal import NULL_BLOCK


@dataclass(frozen=True)
class Block:
    """One swapped variable and its alignment coordinates first..stop-1."""

    variable: str  # a causal variable, `full`, or NULL_BLOCK (label: the unchanged base)
    first: int
    stop: int


def variable_blocks(cfg: DictConfig, smallest: int) -> list[Block]:
    """Variable j holds coordinates [j·k, (j+1)·k); the null block the rest up to `smallest`."""
    blocks = [Block(v, j * cfg.k, (j + 1) * cfg.k) for j, v in enumerate(swapped(cfg))]
    if cfg.null_block:
        blocks.append(Block(NULL_BLOCK, blocks[-1].stop, smallest))
    return blocks


def row_variable(cfg: DictConfig, block: Block) -> str:
    """How result rows name a block's variable; a cross-task map names both sides, e.g.
    `count~cumu_val`."""
    if swap_map(cfg):
        return "~".join([block.variable, *sorted(set(swap_map(cfg).values()))])
    return block.variable
