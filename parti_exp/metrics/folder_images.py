"""Folders of image files as uint8 batches, read as torch-fidelity reads them (PIL, top level, png/jpg), converted
as the training images are (16-bit scaled, transparency over white; torch-fidelity drops the alpha instead)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from parti_exp.data.decode import open_image, pil_mode
from parti_exp.errors import BadDataError, MissingInputError

# torch-fidelity's defaults for folder inputs: these extensions (samples_find_ext), top level only.
EXTENSIONS = (".png", ".jpg", ".jpeg")


# Written by ``python -m parti_exp.sample`` beside its images: ``IMAGES_KEY`` lists them, relative to the folder, so
# that the sheets beside them (grid.png, strip.png) and the images of prompt or class subfolders are told apart.
MANIFEST = "manifest.json"
IMAGES_KEY = "images"


def listed_images(folder: Path, key: str) -> list[Path] | None:
    """The images ``folder``'s manifest.json lists, or None when it has none (a folder of images from elsewhere)."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    try:
        listed = json.loads(manifest.read_text()).get(IMAGES_KEY)
    except (json.JSONDecodeError, AttributeError):
        raise BadDataError(f"{manifest} is not a manifest written by python -m parti_exp.sample: move it out of "
                           f"{key}={folder}, or write the folder again") from None
    if listed is None:
        return None
    files = [folder / name for name in listed]
    outside = [name for name, path in zip(listed, files) if not path.resolve().is_relative_to(folder.resolve())]
    missing = [name for name, path in zip(listed, files) if not path.is_file()]
    if outside or missing:
        raise BadDataError(f"{manifest} lists {len(outside) + len(missing)} images that are not files in {folder} "
                           f"(e.g. {(outside + missing)[0]}): write the samples again, or delete {MANIFEST} to read "
                           "the folder's own images")
    return files


def image_files(folder: str | Path, key: str) -> list[Path]:
    """The images of ``folder``: those its manifest.json lists (a folder ``sample`` wrote, without its grid), else
    the image files directly in it, sorted; ``key`` names the setting in error messages."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(f"{key}={folder} is not a directory")
    listed = listed_images(folder, key)
    if listed is not None:
        return listed
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
