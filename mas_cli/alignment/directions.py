"""The directions of a fit: for each ordered model pair (source → target) and each swapped block,
its counterfactual training and validation items with their frozen activations (items.py)."""

from __future__ import annotations

from dataclasses import dataclass

from mas_cli import seeds
from mas_cli.alignment.items import DirectionData, build_direction
from mas_cli.alignment.latents import build_bank
from mas_cli.alignment.swaps import Block


@dataclass
class Direction:
    source: int  # model indices
    target: int
    train: DirectionData
    val: DirectionData
    block: Block  # the swapped variable and its alignment coordinates
    latent: bool = False  # trained with the latent loss instead of the target's behaviour

    @property
    def variable(self) -> str:
        return self.block.variable

    def unmatched(self) -> int | None:
        """Items (train + val) with no matching natural latent; None for behaviour directions."""
        if not self.latent:
            return None
        return sum(int((~data.items.has_latent).sum()) for data in (self.train, self.val))


def build_directions(
    models,
    pairs,
    site,
    blocks: list[Block],
    settings,
    seed,
    device,
    latent_pairs=(),
    bank_size=0,
    causal_model=None,
    by_task=None,
    draw=None,
) -> list[Direction]:
    """Counterfactual data per direction and block; seeded by (seed, source, target, split,
    block) so that the same run always sees the same items. Directions in `latent_pairs` also
    get matched natural latents from a bank of `bank_size` natural sequences of their target.
    `by_task` maps a task name to the variable its models swap instead (cross-task alignment:
    the target's variable takes the source's value). `draw`: the run's own source of
    counterfactuals (mas_cli/data/), else the task's causal model."""
    by_task = by_task or {}
    banks = {t: build_bank(models[t], bank_size, seeds.latent_bank(seed, t), device) for _, t in latent_pairs}
    out = []
    for s, t in pairs:
        bank = banks[t] if (s, t) in latent_pairs else None
        for j, block in enumerate(blocks):
            made = [
                build_direction(
                    models[s],
                    models[t],
                    site,
                    by_task.get(models[t].task.name, block.variable),
                    size,
                    seeds.counterfactual_items(seed, s, t, split, j),
                    device,
                    bank,
                    causal_model,
                    by_task.get(models[s].task.name, block.variable),
                    draw,
                    ("train", "val")[split],
                )
                for split, size in enumerate((settings.train_size, settings.val_size))
            ]
            out.append(Direction(s, t, *made, block=block, latent=bank is not None))
    return out
