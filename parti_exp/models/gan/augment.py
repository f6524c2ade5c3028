"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) of D's inputs.

D sees real and generated images through the same random transforms, in D's and in G's update, so it
cannot tell them apart by the augmentation, and the transforms stay differentiable so G's gradient flows
back through them. With limited data this keeps D from memorising the training set.

Every transform draws its parameters per image and applies them to all channels of that image; the
images are expected in [-1, 1].
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from parti_exp.runtime.validation import require

Transform = Callable[[torch.Tensor], torch.Tensor]


def brightness(x: torch.Tensor) -> torch.Tensor:
    """Add one offset in [-0.5, 0.5) to every pixel of an image."""
    return x + (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)


def saturation(x: torch.Tensor) -> torch.Tensor:
    """Scale each pixel's distance to its grey value by a factor in [0, 2) (identity on grayscale)."""
    grey = x.mean(dim=1, keepdim=True)
    return (x - grey) * (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + grey


def contrast(x: torch.Tensor) -> torch.Tensor:
    """Scale each image's distance to its mean by a factor in [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size in x and y, filling with zeros."""
    n, _, h, w = x.shape
    pad_y, pad_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    shift_y = torch.randint(-pad_y, pad_y + 1, (n, 1), device=x.device)
    shift_x = torch.randint(-pad_x, pad_x + 1, (n, 1), device=x.device)
    padded = F.pad(x, [pad_x, pad_x, pad_y, pad_y])
    # Output pixel (i, j) reads padded pixel (i + pad - shift): a gather, so gradients reach x.
    rows = (torch.arange(h, device=x.device) + pad_y - shift_y)[:, :, None]
    cols = (torch.arange(w, device=x.device) + pad_x - shift_x)[:, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of side ``ratio`` of the image size at a random place per image (it may be clipped
    by the border)."""
    n, _, h, w = x.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - size_y % 2), (n, 1, 1), device=x.device) - size_y // 2
    left = torch.randint(0, w + (1 - size_x % 2), (n, 1, 1), device=x.device) - size_x // 2
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, list[Transform]] = {
    "color": [brightness, saturation, contrast],
    "translation": [translation],
    "cutout": [cutout],
}


def parse_policy(policy: str, table: dict[str, list[Transform]], key: str) -> tuple[str, list[Transform]]:
    """A comma-separated list of ``table``'s names -> (the normalised list, its transforms in order); an unknown
    name is a ConfigError naming ``key``."""
    names = [name.strip() for name in policy.split(",") if name.strip()]
    unknown = [name for name in names if name not in table]
    require(not unknown, key, f"has unknown names {unknown}; choose from {sorted(table)} (comma-separated)")
    return ",".join(names), [transform for name in names for transform in table[name]]


class DiffAugment:
    """Apply the transforms of a comma-separated ``policy`` (``"color,translation,cutout"``) in order.

    The empty policy is the identity, so a config can switch augmentation off with ``policy: ""``.
    """

    def __init__(self, policy: str = "color,translation,cutout") -> None:
        self.policy, self.transforms = parse_policy(policy, POLICIES, "the DiffAugment policy")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        for transform in self.transforms:
            images = transform(images)
        return images

    def __repr__(self) -> str:
        return f"DiffAugment(policy={self.policy!r})"
