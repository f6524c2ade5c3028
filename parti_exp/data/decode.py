"""Turning image files and small arrays into uint8 ``C x H x W`` arrays with PIL, for the uint8 cache.

PIL does all resampling so that every dataset is resized the same way (PIL's filters antialias when
downscaling), and so that tests can check pixels against PIL directly.

Image files may come from anywhere (a scraped folder): each is size-checked from its header before any pixel is
decoded, converted to the configured channels whatever it was stored as, and a file that cannot be decoded is named
in the error, or skipped and counted with ``data.skip_bad=true``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from parti_exp.errors import BadDataError, ConfigError

log = logging.getLogger(__name__)

# A prepare step: PIL image in the target mode -> PIL image of the final size. Raises ValueError when the
# image cannot be prepared (too small for a crop, ...); the message is prefixed with the file's path.
Prepare = Callable[[Image.Image], Image.Image]

# The most pixels an image may declare (Pillow's own default, 3 x 4 x 8192 x 8192 / 3 bytes: ~270 MB as RGB). Set
# here, not read from Pillow's Image.MAX_IMAGE_PIXELS: that global only warns up to twice its value, and other
# libraries set it to None. A PNG declaring 100,000 x 100,000 pixels would otherwise decode into 30 GB.
MAX_IMAGE_PIXELS = 89_478_485

# Stored as a 16-bit grayscale (PNG, PGM, TIFF): Pillow's convert("L") clips these at 255 instead of scaling.
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def pil_mode(channels: int) -> str:
    return {1: "L", 3: "RGB"}[channels]


def to_chw(image: Image.Image) -> np.ndarray:
    """PIL image ("L" or "RGB") -> uint8 ``C x H x W``."""
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def convert(image: Image.Image, mode: str) -> Image.Image:
    """``image`` as ``mode`` ("L" or "RGB"), whatever it was stored as.

    16-bit grayscale is scaled to 8 bits (65535 -> 255). Transparent pixels (an alpha channel, or a palette or color
    key marked transparent) are composited over white: dropping the alpha would show whatever color the file keeps
    under them, often black. CMYK, palette, bilevel and YCbCr images go through Pillow's own conversions.
    """
    if image.mode in SIXTEEN_BIT_MODES:
        levels = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
        image = Image.fromarray(np.round(levels / 257).astype(np.uint8), mode="L")
    if image.has_transparency_data:
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert(mode)


def open_image(path: Path | str, mode: str, data: BinaryIO | None = None) -> Image.Image:
    """The image file at ``path`` (or its bytes in ``data``, ``path`` then naming where they come from: a shard and
    key) decoded and converted to ``mode``; BadDataError naming it when it declares more than ``MAX_IMAGE_PIXELS``
    pixels or cannot be decoded."""
    try:
        with Image.open(path if data is None else data) as image:  # reads the header only
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise BadDataError(
                    f"image {path} declares {width} x {height} pixels, more than the {MAX_IMAGE_PIXELS:,} an image may "
                    "have (a decompression bomb, or a picture far larger than training needs): not decoded. Shrink "
                    "or delete the file"
                )
            image.load()
            return convert(image, mode)
    except BadDataError:
        raise
    except Image.DecompressionBombError as error:  # Pillow's own check, at open, when its limit is the lower one
        raise BadDataError(
            f"image {path} is larger than an image may be ({error}): not decoded. Shrink or delete the file"
        ) from error
    # PIL raises OSError (truncated, not an image), SyntaxError (some malformed headers), EOFError and ValueError (an
    # unsupported mode).
    except (OSError, SyntaxError, EOFError, ValueError) as error:
        raise BadDataError(
            f"cannot decode image {path}: {error}. It is corrupt, truncated or not an image: replace or delete it"
        ) from error


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


@dataclass
class Unreadable:
    """A file that could not be decoded or prepared: its position in the list, and the message saying why."""

    index: int
    message: str


class ImageFiles(Dataset):
    """``paths[i]`` decoded, converted to ``mode`` and prepared, as uint8 ``C x H x W``, or ``Unreadable``.

    A bad file is returned rather than raised: raised in a decoding process, the error would reach the user
    wrapped in that process's traceback; the caller raises or skips it.
    """

    def __init__(self, paths: Sequence[Path], mode: str, prepare: Prepare) -> None:
        self.paths = paths
        self.mode = mode
        self.prepare = prepare

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray | Unreadable:
        path = self.paths[index]
        try:
            return to_chw(self.prepare(open_image(path, self.mode)))
        except BadDataError as error:
            return Unreadable(index, str(error))
        except ValueError as error:  # a prepare step's refusal (an image smaller than data.crop)
            return Unreadable(index, f"{path}: {error}")


def decode_image_files(
    paths: Sequence[Path],
    mode: str,
    prepare: Prepare,
    num_workers: int,
    skipped: list[int] | None = None,
    chunk_size: int = 256,
) -> Iterator[np.ndarray]:
    """Yield the decoded images in order, ``chunk_size`` files at a time, decoding in ``num_workers`` processes.

    A file that cannot be decoded or prepared raises BadDataError naming it; with a ``skipped`` list
    (``data.skip_bad=true``) it is left out instead, its index appended to the list and a warning logged.

    A DataLoader is the process pool here because it already handles ordered results, worker errors
    (re-raised with the worker's traceback) and clean shutdown.
    """
    loader = DataLoader(ImageFiles(paths, mode, prepare), batch_size=chunk_size, num_workers=num_workers,
                        collate_fn=list)
    for items in loader:
        bad = [item for item in items if isinstance(item, Unreadable)]
        if bad and skipped is None:
            raise BadDataError(f"{bad[0].message} (or set data.skip_bad=true to leave such files out)")
        for item in bad:
            log.warning("skipped (data.skip_bad=true): %s", item.message)
            skipped.append(item.index)
        images = [item for item in items if not isinstance(item, Unreadable)]
        if images:
            yield np.stack(images)


def center_crop_resize(image: Image.Image, crop: int, size: int) -> Image.Image:
    """The square ``crop`` x ``crop`` at the image's center, resized to ``size`` (the usual CelebA preprocessing)."""
    width, height = image.size
    if crop > min(width, height):
        raise ConfigError(
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
