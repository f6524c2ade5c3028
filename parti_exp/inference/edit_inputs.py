"""The images ``python -m parti_exp.edit`` reads (``image=`` a file or a folder) and the folders it writes per image.

Files come from anywhere: each is size-checked before it is decoded (``open_image``) and converted to the model's
channels. A folder name is made from the file's name and stays inside the output folder whatever the name holds.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from PIL import Image
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

from parti_exp.data.decode import open_image, pil_mode, resize_images, to_chw
from parti_exp.errors import ConfigError, MissingInputError


def input_images(path: str | Path) -> list[Path]:
    """``path`` itself, or the image files directly in the folder ``path``, sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise MissingInputError(f"image={path} does not exist: give an image file or a folder of them")
    found = sorted(p for p in path.iterdir() if p.is_file() and has_file_allowed_extension(p.name, IMG_EXTENSIONS))
    if not found:
        raise MissingInputError(f"image={path} is a folder without image files ({', '.join(IMG_EXTENSIONS)})")
    return found


def read_image(path: Path, channels: int) -> torch.Tensor:
    """uint8 ``C x H x W`` with the model's channels, whatever the file stores."""
    return torch.from_numpy(to_chw(open_image(path, pil_mode(channels))).copy())


def to_model_input(canvas: torch.Tensor, size: int, name: str) -> torch.Tensor:
    """A square uint8 canvas at the model's ``size`` (PIL bicubic, as the data pipeline resizes), as a
    ``1 x C x size x size`` batch in [-1, 1]."""
    height, width = canvas.shape[-2:]
    if height != width:
        raise ConfigError(f"{name}: the canvas is {height} x {width} pixels, the model draws {size} x {size} "
                          "squares: pad it to a square with pad=[top,left,bottom,right]")
    resized = resize_images(canvas.numpy()[None], size, Image.Resampling.BICUBIC)
    return torch.from_numpy(resized).float() / 127.5 - 1


def output_folders(paths: list[Path]) -> list[str]:
    """One folder name per input file: its stem with anything but letters, digits, ``-``, ``_`` and ``.`` turned
    into ``_``; names that would clash (``a.png`` and ``a.jpg``) or mean something else (``.``, ``..``) keep their
    suffix and then a counter."""
    names: list[str] = []
    for path in paths:
        name = safe_name(path.stem)
        if name in names or name.strip(".") == "":
            name = safe_name(path.name)
        base, counter = name, 1
        while name in names or name.strip(".") == "":
            name, counter = f"{base}_{counter}", counter + 1
        names.append(name)
    return names


def safe_name(text: str) -> str:
    return re.sub(r"[^\w.-]", "_", text, flags=re.ASCII)
