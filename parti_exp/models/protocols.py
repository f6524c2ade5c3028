"""What the tools that draw from latents ask of a trained model: the fixed-latent sample grid, and
``python -m parti_exp.sample``'s plain samples and interpolation (``parti_exp.inference.latent``).

The GANs (``GANModule``) and the VAE (``VAEModule``) both decode standard normal latents into images; only a GAN
with a style space (``has_style_space``) or class embeddings (``num_classes``) offers the tools that need them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class LatentImageModel(Protocol):
    latent_dim: int
    # True only for a GANModule whose generator maps z to w (map_to_w, generate_from_w, mean_w).
    has_style_space: bool
    # The classes a conditional model draws, None for an unconditional one.
    num_classes: int | None

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] from ``B x latent_dim`` latents (labels ignored by unconditional models), in eval
        mode."""
        ...
