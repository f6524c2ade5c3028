"""The sheet ``python -m parti_exp.edit`` writes per image: the prompt above one row of the input, the input with
the regenerated area tinted, and the edits."""

from __future__ import annotations

from pathlib import Path

import torch

from parti_exp.runtime.images import save_captioned_grid

TINT = torch.tensor([1.0, -1.0, -1.0])  # red, in [-1, 1]
TINT_SHARE = 0.5


def as_rgb(images: torch.Tensor) -> torch.Tensor:
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def mask_overlay(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``image`` (``1 x C x H x W`` in [-1, 1]) in RGB, the pixels of ``mask`` (``H x W``) blended with red."""
    rgb = as_rgb(image.float().cpu())
    tinted = (1 - TINT_SHARE) * rgb + TINT_SHARE * TINT[:, None, None]
    return torch.where(mask.cpu(), tinted, rgb)


def save_edit_sheet(prompt: str, image: torch.Tensor, mask: torch.Tensor, edits: torch.Tensor, path: Path) -> Path:
    """One row: ``image``, its mask overlay, then ``edits`` (``n x C x H x W``), under ``prompt``."""
    row = torch.cat([as_rgb(image.float().cpu()), mask_overlay(image, mask), as_rgb(edits.float().cpu())])
    return save_captioned_grid([(prompt, row)], path)
