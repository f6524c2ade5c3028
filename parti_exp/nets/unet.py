"""The image-to-image generator: a U-Net (Ronneberger et al. 2015; pix2pix's generator, Isola et al. 2017), with a
pixel-shuffle head (Shi et al. 2016) when the output is larger than the input (super-resolution).

The encoder halves the input ``depth`` times with 4x4 stride-2 convs (LeakyReLU 0.2, as pix2pix), the decoder
doubles it back with 4x4 transposed convs (ReLU), each level concatenating the encoder's features of its size (the
skip connections that carry the input's detail past the bottleneck). ``depth`` comes from the input size: down to
a 2 x 2 bottleneck, at most ``max_depth`` halvings. Widths double per level up to ``8 * width``, as pix2pix's
64-128-256-512. With ``upscale`` = 2**k the features at the input's size go through k stages of 3x3 conv + pixel
shuffle, each doubling the size, before the last conv to ``out_channels`` and tanh.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from parti_exp.runtime.validation import is_int_at_least, require

NORMS = ("batch", "instance", "none")
BOTTLENECK = 2  # the smallest feature map the encoder halves down to


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        # Affine, as CycleGAN's; without running statistics: each image is normalised by its own.
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def level_width(width: int, level: int) -> int:
    return width * 2 ** min(level, 3)


def unet_depth(input_size: int, max_depth: int) -> int:
    """Halvings from ``input_size`` down to the 2 x 2 bottleneck, at most ``max_depth``."""
    return max(1, min(max_depth, int(math.log2(input_size // BOTTLENECK))))


class UNetGenerator(nn.Module):
    """``forward(inputs, labels=None)``: ``B x in_channels x s x s`` -> ``B x out_channels x (s * upscale) x (s *
    upscale)`` in [-1, 1], where ``s = img_size // upscale``."""

    def __init__(
        self,
        img_size: int,
        in_channels: int,
        out_channels: int,
        upscale: int = 1,
        width: int = 64,
        max_depth: int = 8,
        norm: str = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        require(is_int_at_least(upscale, 1) and upscale & (upscale - 1) == 0, "the U-Net's upscale",
                f"must be a power of 2 (the task's scale), got {upscale!r}")
        require(norm in NORMS, "model.generator.norm", f"must be one of {NORMS}, got {norm!r}")
        require(is_int_at_least(width, 1) and is_int_at_least(max_depth, 1), "model.generator.width and max_depth",
                f"must be integers >= 1, got width={width!r}, max_depth={max_depth!r}")
        require(0.0 <= dropout < 1.0, "model.generator.dropout", f"must be in [0, 1), got {dropout}")
        input_size = img_size // upscale
        require(img_size % upscale == 0 and input_size >= 2, "the U-Net",
                f"needs an input side of at least 2 pixels: data.img_size={img_size} / upscale {upscale} = "
                f"{img_size / upscale:g}")
        self.img_size = img_size
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.upscale = upscale
        self.depth = depth = unet_depth(input_size, max_depth)
        require(input_size % 2**depth == 0, "the U-Net",
                f"halves its input {depth} times: the input side {input_size} must be a multiple of {2**depth}")

        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.LeakyReLU(0.2))
        self.down = nn.ModuleList()
        for level in range(1, depth + 1):
            innermost = level == depth
            self.down.append(nn.Sequential(
                nn.Conv2d(level_width(width, level - 1), level_width(width, level), 4, 2, 1),
                # pix2pix's innermost layer has no norm: at the bottleneck an instance norm would see too few pixels
                nn.Identity() if innermost else norm_layer(norm, level_width(width, level)),
                nn.LeakyReLU(0.2),
            ))
        self.up = nn.ModuleList()
        for level in range(depth, 0, -1):
            # Input: this level's features, concatenated with the encoder's of the same size below the bottleneck.
            c_in = level_width(width, level) * (1 if level == depth else 2)
            c_out = level_width(width, level - 1)
            self.up.append(nn.Sequential(
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1),
                norm_layer(norm, c_out),
                nn.Dropout(dropout) if dropout else nn.Identity(),
                nn.ReLU(),
            ))
        self.merge = nn.Sequential(nn.Conv2d(2 * width, width, 3, padding=1), norm_layer(norm, width), nn.ReLU())
        head: list[nn.Module] = []
        for _ in range(int(math.log2(upscale))):
            head += [nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2), nn.ReLU()]
        head += [nn.Conv2d(width, out_channels, 3, padding=1), nn.Tanh()]
        self.head = nn.Sequential(*head)

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.stem(inputs)  # (B, w, s, s)
        skips = [x]
        for down in self.down:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck itself is the decoder's input, not a skip
        for level, up in enumerate(self.up):
            x = up(x if level == 0 else torch.cat([x, skips.pop()], 1))
        x = self.merge(torch.cat([x, skips.pop()], 1))  # (B, w, s, s)
        return self.head(x)
