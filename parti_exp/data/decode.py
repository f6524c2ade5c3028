"""Turning image files and small arrays into uint8 ``C x H x W`` arrays with PIL, for the uint8 cache.

PIL does all resampling so that every dataset is resized the same way (PIL's filters antialias when
downscaling), and so that tests can check pixels against PIL directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader, Dataset

# A prepare step: PIL image in the target mode -> PIL image of the final size. Raises ValueError when the
# image cannot be prepared (too small for a crop, ...); the message is prefixed with the file's path.
Prepare = Callable[[Image.Image], Image.Image]


def pil_mode(channels: int) -> str:
    return {1: "L", 3: "RGB"}[channels]


def to_chw(image: Image.Image) -> np.ndarray:
    """PIL image ("L" or "RGB") -> uint8 ``C x H x W``."""
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def resize_images(images: np.ndarray, size: int, resample: Image.Resampling) -> np.ndarray:
    """Resize a uint8 ``N x C x H x W`` array (C = 1 or 3) to ``size x size``, image by image with PIL."""
    if images.shape[-2:] == (size, size):
        return images
    out = np.empty((len(images), images.shape[1], size, size), dtype=np.uint8)
    for i, image in enumerate(images):
        # A 2-d uint8 array becomes an "L" image, an H x W x 3 one an "RGB" image.
        hwc = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
        out[i] = to_chw(Image.fromarray(hwc).resize((size, size), resample))
    return out


def default_decode_workers() -> int:
    """One decoding process per CPU this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class ImageFiles(Dataset):
    """``paths[i]`` decoded, converted to ``mode`` and prepared, as uint8 ``C x H x W``."""

    def __init__(self, paths: Sequence[Path], mode: str, prepare: Prepare) -> None:
        self.paths = paths
        self.mode = mode
        self.prepare = prepare

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                converted = image.convert(self.mode)
        except (OSError, SyntaxError) as error:  # PIL raises SyntaxError for some malformed headers
            raise ValueError(
                f"cannot decode image {path}: {error}. Replace or delete the file (it is corrupt, truncated "
                "or not an image)"
            ) from error
        try:
            return to_chw(self.prepare(converted))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error


def decode_image_files(
    paths: Sequence[Path], mode: str, prepare: Prepare, num_workers: int, chunk_size: int = 256
) -> Iterator[np.ndarray]:
    """Yield the decoded images in order, ``chunk_size`` at a time, decoding in ``num_workers`` processes.

    A DataLoader is the process pool here because it already handles ordered results, worker errors
    (re-raised with the worker's traceback) and clean shutdown.
    """
    loader = DataLoader(
        ImageFiles(paths, mode, prepare), batch_size=chunk_size, num_workers=num_workers, collate_fn=np.stack
    )
    yield from loader


def center_crop_resize(image: Image.Image, crop: int, size: int) -> Image.Image:
    """The square ``crop`` x ``crop`` at the image's center, resized to ``size`` (the usual CelebA preprocessing)."""
    width, height = image.size
    if crop > min(width, height):
        raise ValueError(
            f"data.crop={crop} is larger than the image ({width}x{height}); use data.crop <= {min(width, height)}"
        )
    left, top = (width - crop) // 2, (height - crop) // 2
    return image.crop((left, top, left + crop, top + crop)).resize((size, size), Image.Resampling.BICUBIC)


def resize_center_crop(image: Image.Image, size: int) -> Image.Image:
    """Resize so the shorter side is ``size``, then keep the central ``size`` x ``size`` square."""
    width, height = image.size
    scale = size / min(width, height)
    new_width, new_height = max(size, round(width * scale)), max(size, round(height * scale))
    resized = image.resize((new_width, new_height), Image.Resampling.BICUBIC)
    left, top = (new_width - size) // 2, (new_height - size) // 2
    return resized.crop((left, top, left + size, top + size))
