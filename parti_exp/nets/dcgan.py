"""DCGAN generator and discriminator (Radford et al. 2016) for any power-of-two size from 8 px up."""

from __future__ import annotations

import math

import torch
from torch import nn

from parti_exp.errors import ConfigError
from parti_exp.runtime.validation import require


def upsampling_stages(img_size: int) -> int:
    """Number of x2 stages from the 4x4 base to ``img_size``; only 4 * 2**k sizes are possible."""
    stages = math.log2(img_size / 4) if img_size > 0 else -1
    require(img_size >= 8 and stages == int(stages), "DCGAN nets",
            f"need an image size of 4 * 2**k pixels, at least 8 (8, 16, 32, 64, 128, ...); got {img_size}. Set "
            "data.img_size accordingly.")
    return int(stages)


def norm_layer(kind: str, channels: int) -> nn.Module:
    """``batch`` (DCGAN), ``layer`` (one group over C,H,W: the WGAN-GP paper's drop-in) or ``none``."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"norm must be one of batch, layer, none; got {kind!r}")


class DCGANGenerator(nn.Module):
    """z -> 4x4 (transposed conv) -> x2 upsampling stages halving the width -> tanh image."""

    def __init__(
        self, latent_dim: int = 100, img_size: int = 32, channels: int = 3, width: int = 64, norm: str = "batch"
    ) -> None:
        super().__init__()
        stages = upsampling_stages(img_size)
        self.latent_dim = latent_dim
        widths = [width * 2 ** (stages - 1 - i) for i in range(stages)]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0, bias=norm == "none"),
            norm_layer(norm, widths[0]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=norm == "none"),
                norm_layer(norm, c_out),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_dcgan_weights(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """Strided convs doubling the width down to 4x4, then a 4x4 conv to one logit (no sigmoid)."""

    def __init__(self, img_size: int = 32, channels: int = 3, width: int = 64, norm: str = "batch") -> None:
        super().__init__()
        stages = upsampling_stages(img_size)
        widths = [width * 2**i for i in range(stages)]
        # No normalisation on the first layer: DCGAN's rule, it keeps the input's statistics.
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm == "none"),
                norm_layer(norm, c_out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        init_dcgan_weights(self)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The activations before the last conv, flattened (B x 8 * width * 4 * 4 at the last stage's width)."""
        return self.net[:-1](images).flatten(1)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(images).flatten()


def init_dcgan_weights(module: nn.Module) -> None:
    """N(0, 0.02) conv weights and N(1, 0.02) norm scales, as in the DCGAN paper."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
