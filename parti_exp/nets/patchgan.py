"""The PatchGAN discriminator (Isola et al. 2017): one logit per overlapping patch, judging local texture rather
than the whole image; and pix2pix's conditional form, which sees the translator's input beside the image it judges.

All normalisation is GroupNorm, which works per sample: each image's logits do not depend on the rest of the batch,
which keeps R1 and gradient penalties well defined (pix2pix's batch norm would mix the samples).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from parti_exp.runtime.validation import require


def group_norm(channels: int) -> nn.GroupNorm:
    # 32 groups as in VQGAN, fewer where the width is not a multiple of 32.
    return nn.GroupNorm(math.gcd(32, channels), channels)


def patch_layers(img_size: int, most: int = 3) -> int:
    """The most stride-2 layers, up to ``most`` (pix2pix's 70 px patches), that leave at least 3 x 3 of
    ``img_size``."""
    layers = 1
    while layers < most and img_size % 2 ** (layers + 1) == 0 and img_size // 2 ** (layers + 1) >= 3:
        layers += 1
    return layers


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` stride-2 4x4 convs doubling the width, one stride-1 4x4 conv, and a 4x4 conv to one
    logit per overlapping patch (B x 1 x h' x w'). Its patches are 16 px with ``n_layers=1``, 34 px with 2 and 70 px
    (pix2pix's) with 3; ``None`` takes as many as the image allows, up to 3 (``patch_layers``)."""

    def __init__(self, img_size: int = 32, channels: int = 1, width: int = 64, n_layers: int | None = 2) -> None:
        super().__init__()
        n_layers = patch_layers(img_size) if n_layers is None else n_layers
        # The two stride-1 4x4 convs (padding 1) each shrink the map by one pixel: at least 3 x 3 must remain.
        fits = n_layers >= 1 and img_size % 2**n_layers == 0 and img_size // 2**n_layers >= 3
        require(fits, "the patch discriminator",
                "halves the image n_layers times and needs at least 3 x 3 left, so data.img_size must be a multiple "
                f"of 2**n_layers of at least 3 * 2**n_layers; got data.img_size={img_size}, "
                f"model.discriminator.n_layers={n_layers}")
        widths = [width * 2**i for i in range(n_layers + 1)]
        # No normalisation on the first layer, as in pix2pix: it keeps the input's statistics.
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(widths[:-2], widths[1:-1]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), group_norm(c_out), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(widths[-2], widths[-1], 4, 1, 1), group_norm(widths[-1]), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(images)


class ConditionalPatchDiscriminator(nn.Module):
    """pix2pix's D: a ``PatchDiscriminator`` of the image and its condition (the translator's input) stacked as
    channels, so that it judges whether the output fits the input, not only whether it looks real. A condition
    smaller than the image (a super-resolution input) is repeated up to the image's size first (nearest neighbour:
    every input pixel stays what it was). The adversarial loop passes the condition where it passes labels."""

    def __init__(
        self, img_size: int, channels: int, condition_channels: int, width: int = 64, n_layers: int | None = None
    ) -> None:
        super().__init__()
        self.img_size = img_size
        self.patches = PatchDiscriminator(img_size, channels + condition_channels, width, n_layers)

    def forward(self, images: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        if condition.shape[-2:] != images.shape[-2:]:
            condition = F.interpolate(condition, size=images.shape[-2:], mode="nearest")
        return self.patches(torch.cat([condition.to(images.dtype), images], 1))
