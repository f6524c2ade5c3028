"""Turning generator output into image files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision.io import write_png
from torchvision.utils import make_grid

# Images a command shows in its grid.png (the sample command writes every image as a file as well).
GRID_SIZE = 256


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> [0, 255] uint8 on the CPU (values outside the range are clipped)."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def grid_uint8(images: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """A square-ish grid (C x H x W uint8) of a batch in [-1, 1], keeping 1 or 3 channels."""
    nrow = nrow or math.ceil(math.sqrt(images.shape[0]))
    grid = make_grid(to_uint8(images), nrow=nrow, padding=2, pad_value=0)
    # make_grid repeats a single channel three times; keep grayscale grayscale.
    return grid[:1] if images.shape[1] == 1 else grid


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    return save_uint8(grid_uint8(images, nrow), path)


def save_each(images: torch.Tensor, out_dir: str | Path, start: int = 0, digits: int = 6) -> list[Path]:
    """One PNG per image (``000000.png`` ..., numbered with ``digits`` digits), at the images' own size and channel
    count."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(to_uint8(images), start=start):
        path = out_dir / f"{i:0{digits}d}.png"
        write_png(image, str(path))
        paths.append(path)
    return paths


def captioned_grid_uint8(rows: list[tuple[str, torch.Tensor]], caption_height: int = 14) -> torch.Tensor:
    """One row of images (in [-1, 1]) per caption, the caption written above its row (white text on black), as a
    ``3 x H x W`` uint8 image."""
    grids = [grid_uint8(images, nrow=len(images)) for _, images in rows]
    width = max(grid.shape[-1] for grid in grids)
    canvas = Image.new("RGB", (width, sum(caption_height + grid.shape[-2] for grid in grids)))
    draw = ImageDraw.Draw(canvas)
    top = 0
    for (caption, _), grid in zip(rows, grids):
        draw.text((2, top + 1), caption, fill=(255, 255, 255))
        pixels = grid.expand(3, -1, -1).permute(1, 2, 0).numpy()
        canvas.paste(Image.fromarray(pixels), (0, top + caption_height))
        top += caption_height + grid.shape[-2]
    return torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1)


def save_uint8(image: torch.Tensor, path: str | Path) -> Path:
    """A ``C x H x W`` uint8 image as a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(image.contiguous(), str(path))
    return path


def save_captioned_grid(rows: list[tuple[str, torch.Tensor]], path: str | Path, caption_height: int = 14) -> Path:
    """One row of images per caption, the caption written above its row (``captioned_grid_uint8``)."""
    return save_uint8(captioned_grid_uint8(rows, caption_height), path)
