"""Folders of image files as uint8 batches, read as torch-fidelity reads them (PIL, top level, png/jpg), converted
as the training images are (16-bit scaled, transparency over white; torch-fidelity drops the alpha instead)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from parti_exp.data.decode import open_image, pil_mode
from parti_exp.errors import BadDataError, MissingInputError

# torch-fidelity's defaults for folder inputs: these extensions (samples_find_ext), top level only.
EXTENSIONS = (".png", ".jpg", ".jpeg")


def image_files(folder: str | Path, key: str) -> list[Path]:
    """Sorted image files under ``folder``; ``key`` names the setting in error messages."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(f"{key}={folder} is not a directory")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())
    if not files:
        raise MissingInputError(f"{key}={folder} holds no {'/'.join(EXTENSIONS)} files")
    return files


def folder_batches(files: list[Path], batch_size: int, channels: int = 3) -> Iterator[torch.Tensor]:
    """uint8 ``N x channels x H x W`` batches; every image must have the same size."""
    mode = pil_mode(channels)
    size = None
    for start in range(0, len(files), batch_size):
        batch = []
        for path in files[start : start + batch_size]:
            # Size-checked before decoding, converted like the training images; a bad file is named.
            array = np.asarray(open_image(path, mode))
            if size is None:
                size = array.shape[:2]
            elif array.shape[:2] != size:
                raise BadDataError(
                    f"{path} is {array.shape[1]}x{array.shape[0]} px, the first image {size[1]}x{size[0]}: "
                    "all images of a folder must have one size"
                )
            batch.append(array.reshape(*array.shape[:2], channels))
        yield torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).contiguous()
