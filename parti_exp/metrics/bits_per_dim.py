"""Bits per dimension of held-out images, for a model that bounds its likelihood (the VAE): what
``python -m parti_exp.evaluate`` reports next to FID. GANs have no likelihood, and report none."""

from __future__ import annotations

import numpy as np
import torch

from parti_exp.data.base import to_signed_unit
from parti_exp.protocols import BoundsLikelihood
from parti_exp.runtime.torch_utils import tensor_of


def held_out_bits_per_dim(model: BoundsLikelihood, images: np.ndarray, batch_size: int, seed: int = 0
                          ) -> dict[str, float]:
    """The mean of each bound over uint8 ``N x C x H x W`` ``images``, the same for the same seed."""
    generator = torch.Generator(model.device).manual_seed(seed)
    sums: dict[str, float] = {}
    for start in range(0, len(images), batch_size):
        batch = to_signed_unit(tensor_of(images[start : start + batch_size]))
        for name, values in model.bits_per_dim(batch.to(model.device), generator).items():
            sums[name] = sums.get(name, 0.0) + float(values.sum())
    return {name: total / len(images) for name, total in sums.items()}
