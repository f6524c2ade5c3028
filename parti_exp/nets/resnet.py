"""ResNet generator and discriminator for 16-64 px images: SNGAN's CIFAR-10 nets (Miyato et al. 2018,
after Gulrajani et al. 2017's ResNet GAN), and the residual blocks the other ResNet-based GANs reuse.

Generator: z -> linear to 4x4 -> one up-block per x2 -> BN, ReLU, 3x3 conv -> tanh. Discriminator: a
down-block per /2 until 8x8, then two blocks at 8x8, ReLU and a sum over positions giving the features
phi(x), and a linear head. At 32 px with widths 256 / 128 these are the paper's CIFAR-10 nets.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from parti_exp.runtime.validation import require

# A norm for the generator's blocks: built from a channel count, called as norm(x, labels).
NormFactory = Callable[[int], nn.Module]


def resnet_stages(img_size: int) -> int:
    """Number of x2 stages between 4x4 and ``img_size``; the nets need 4 * 2**k pixels, at least 16."""
    stages = math.log2(img_size / 4) if img_size > 0 else -1
    require(img_size >= 16 and stages == int(stages), "ResNet GAN nets",
            f"need an image size of 4 * 2**k pixels, at least 16 (16, 32, 64, ...); got {img_size}. Set "
            "data.img_size accordingly.")
    return int(stages)


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """``module`` with its weight divided by its largest singular value (one power iteration per call)."""
    return spectral_norm(module) if enabled else module


class BatchNorm2d(nn.BatchNorm2d):
    """Batch norm with the ``norm(x, labels)`` call of the generator's blocks; the labels are ignored."""

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x)


class GBlock(nn.Module):
    """Pre-activation up-block: norm, ReLU, x2 nearest upsampling, 3x3 conv, norm, ReLU, 3x3 conv; the
    shortcut is the upsampled input through a 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int, norm: NormFactory = BatchNorm2d) -> None:
        super().__init__()
        self.norm1 = norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.norm2 = norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)
        init_residual(self.conv1, self.conv2, self.shortcut)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x, labels)), scale_factor=2)
        h = self.conv2(F.relu(self.norm2(self.conv1(h), labels)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class DBlock(nn.Module):
    """Pre-activation block: ReLU, 3x3 conv, ReLU, 3x3 conv, then optional /2 average pooling; a 1x1-conv
    shortcut where the shape changes. No normalisation: the penalties and spectral norm act per sample.

    ``first``: the block that reads the image (Miyato's "optimized block") skips the first ReLU, which
    would discard the negative half of the pixel range.
    """

    def __init__(
        self, in_channels: int, out_channels: int, downsample: bool, first: bool = False, spectral_norm: bool = True
    ) -> None:
        super().__init__()
        self.downsample = downsample
        self.first = first
        conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        shortcut = nn.Conv2d(in_channels, out_channels, 1) if downsample or in_channels != out_channels else None
        # Initialise before spectral norm is attached: its power iteration starts from the final weights.
        init_residual(conv1, conv2, shortcut)
        self.conv1 = maybe_spectral_norm(conv1, spectral_norm)
        self.conv2 = maybe_spectral_norm(conv2, spectral_norm)
        self.shortcut = nn.Identity() if shortcut is None else maybe_spectral_norm(shortcut, spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        # Average pooling and a 1x1 conv commute (both linear, per position): pool first, it is cheaper.
        skip = F.avg_pool2d(x, 2) if self.downsample else x
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        return h + self.shortcut(skip)


class ResNetGenerator(nn.Module):
    """z -> 4x4 x ``width`` -> one ``GBlock`` per x2 stage -> BN, ReLU, 3x3 conv -> tanh image.

    ``norm`` builds the blocks' norms: plain batch norm here, class-conditional in cGAN-PD.
    """

    def __init__(
        self,
        latent_dim: int = 128,
        img_size: int = 32,
        channels: int = 3,
        width: int = 256,
        norm: NormFactory = BatchNorm2d,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.width = width
        self.linear = nn.Linear(latent_dim, 4 * 4 * width)
        self.blocks = nn.ModuleList(GBlock(width, width, norm) for _ in range(resnet_stages(img_size)))
        self.norm = nn.BatchNorm2d(width)
        self.to_image = nn.Conv2d(width, channels, 3, 1, 1)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        nn.init.xavier_uniform_(self.to_image.weight)
        nn.init.zeros_(self.to_image.bias)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear(z).view(z.shape[0], self.width, 4, 4)
        for block in self.blocks:
            h = block(h, labels)
        return torch.tanh(self.to_image(F.relu(self.norm(h))))


class ResNetDiscriminator(nn.Module):
    """Down-blocks to 8x8, two more blocks, ReLU and sum pooling -> ``features`` phi(x) -> linear ``head``.

    ``spectral_norm`` (SNGAN) divides every weight by its largest singular value, making each layer
    1-Lipschitz; switch it off when a gradient penalty (R1, WGAN-GP) constrains D instead.
    """

    def __init__(self, img_size: int = 32, channels: int = 3, width: int = 128, spectral_norm: bool = True) -> None:
        super().__init__()
        down = resnet_stages(img_size) - 1  # to 8x8
        blocks = [DBlock(channels, width, downsample=True, first=True, spectral_norm=spectral_norm)]
        blocks += [DBlock(width, width, downsample=True, spectral_norm=spectral_norm) for _ in range(down - 1)]
        blocks += [DBlock(width, width, downsample=False, spectral_norm=spectral_norm) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        head = nn.Linear(width, 1)
        nn.init.xavier_uniform_(head.weight)
        nn.init.zeros_(head.bias)
        self.head = maybe_spectral_norm(head, spectral_norm)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """phi(x): one ``width``-vector per image."""
        return F.relu(self.blocks(images)).sum(dim=(2, 3))

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(images)).flatten()


def init_residual(conv1: nn.Conv2d, conv2: nn.Conv2d, shortcut: nn.Conv2d | None) -> None:
    """Xavier-uniform weights, gain sqrt(2) on the residual branch's convs (they follow ReLUs) and 1 on the
    shortcut, zero biases: the SNGAN reference initialisation."""
    for conv, gain in ((conv1, math.sqrt(2)), (conv2, math.sqrt(2)), (shortcut, 1.0)):
        if conv is not None:
            nn.init.xavier_uniform_(conv.weight, gain=gain)
            nn.init.zeros_(conv.bias)
