"""Images from a generator, as the metrics consume them: uint8 batches, quantised like the PNGs we save."""

from __future__ import annotations

from typing import Iterator

import torch

from parti_exp.protocols import MakesImagesForMetrics
from parti_exp.runtime.images import to_uint8


def generated_batches(
    model: MakesImagesForMetrics, count: int, batch_size: int, seed: int, label_pool: torch.Tensor | None = None
) -> Iterator[torch.Tensor]:
    """``count`` generated images in uint8 batches on the model's device; the same seed gives the same images.

    Draws come from a private generator, so measuring never moves the training run's random stream. Labels
    (for conditional models; unconditional ones ignore them) are drawn from ``label_pool``, the real split's
    labels, so the generated class mix follows the data's.
    """
    rng = torch.Generator().manual_seed(seed)
    for start in range(0, count, batch_size):
        n = min(batch_size, count - start)
        labels = None if label_pool is None else label_pool[torch.randint(len(label_pool), (n,), generator=rng)]
        # The same rounding as the PNGs `python -m parti_exp.sample` writes: metrics on those files agree.
        yield to_uint8(model.generate_for_metrics(n, labels, rng)).to(model.device)
