"""A small convolutional image encoder: images in [-1, 1] -> one feature vector each (the contrastive scorer's image
tower)."""

from __future__ import annotations

import math

import torch
from torch import nn

from parti_exp.runtime.validation import is_int_at_least, require


class ImageEncoder(nn.Module):
    """``B x channels x img_size x img_size`` -> ``B x dim``.

    A stem convolution, then stride-2 stages doubling the width down to about 4 x 4, average-pooled to exactly 4 x 4
    (so any size from 4 px works) and flattened rather than pooled to one vector: where things are in the image (a
    digit left or right of another) stays in the features.
    """

    def __init__(self, img_size: int, channels: int, width: int = 32, max_width: int = 256, dim: int = 256) -> None:
        super().__init__()
        for name, value in (("width", width), ("max_width", max_width), ("dim", dim), ("channels", channels)):
            require(is_int_at_least(value, 1), f"ImageEncoder: {name}", f"must be a positive integer, got {value!r}")
        require(is_int_at_least(img_size, 4), "ImageEncoder: data.img_size",
                f"must be an integer >= 4, got {img_size!r}")
        stages = int(math.log2(img_size / 4))
        self.img_size = img_size
        self.channels = channels
        self.dim = dim
        widths = [min(width * 2**i, max_width) for i in range(stages + 1)]
        # GroupNorm, not BatchNorm: an image's features never depend on the batch it comes in, so training batches,
        # a prompt's reranking candidates and the metrics' batches all see the same encoder.
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, padding=1), nn.GroupNorm(1, widths[0]), nn.SiLU()]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.GroupNorm(1, c_out), nn.SiLU()]
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.head = nn.Linear(widths[-1] * 16, dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[1:]) != (self.channels, self.img_size, self.img_size):
            raise ValueError(
                f"ImageEncoder was built for {self.channels} x {self.img_size} x {self.img_size} images, got "
                f"{tuple(images.shape[1:])}"
            )
        return self.head(self.body(images))
