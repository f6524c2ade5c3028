"""Which part of an image an edit regenerates: the ``mask=`` and ``pad=`` settings of ``python -m parti_exp.edit``.

Everything is said in pixels of the *canvas*: the input image grown by ``pad=[top,left,bottom,right]`` pixels
(filled with ``pad_value``: by default the image's own border, repeated). The padded strips are always regenerated
(outpainting); ``mask`` adds:

- ``top``, ``bottom``, ``left``, ``right``: that half of the canvas;
- ``[y0,x0,y1,x1]`` (a list on the command line) or the text ``box=[y0,x0,y1,x1]``: rows y0..y1-1 and columns
  x0..x1-1, inside the canvas;
- a path to a mask image (PNG, ...): white (>= 128) = regenerate, black = keep; another size than the canvas is
  fine as long as its proportions are the canvas's;
- ``none``: nothing (with no pad, the edit is the tokenizer's reconstruction of the input).

The model redraws whole token cells, so a mask is carried to a coarser grid (the model's pixels, then its token
grid) by *any overlap*: a cell is regenerated when any masked pixel falls in it (``cells_touched``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from parti_exp.data.decode import open_image
from parti_exp.errors import ConfigError, MissingInputError
from parti_exp.runtime.validation import is_int_at_least, require

HALVES = ("top", "bottom", "left", "right")
EDGE = "edge"  # pad_value: the image's border pixels, repeated outward
BOX_TEXT = re.compile(r"box=\[([^\]]*)\]")
# A mask image may hold anti-aliased edges, not a photograph: at most this share of grey (not black or white) pixels.
MAX_GREY_SHARE = 0.1
GREY = (32, 224)  # levels strictly between these are grey


def parse_pad(pad: Sequence[int] | None) -> tuple[int, int, int, int]:
    """``pad`` as (top, left, bottom, right) pixels; null is no padding."""
    if pad is None:
        return (0, 0, 0, 0)
    values = list(pad)
    require(len(values) == 4 and all(is_int_at_least(v, 0) for v in values), f"pad={values}",
            "must be four pixel counts >= 0: pad=[top,left,bottom,right]")
    return tuple(values)


def pad_image(image: torch.Tensor, pad: tuple[int, int, int, int], fill: int | str = EDGE
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The canvas (uint8 ``C x H' x W'``) and the ``H' x W'`` mask of its padded strips, filled with ``fill``: a grey
    level, or ``edge``, the image's border pixels repeated outward.

    The strips are regenerated, but the tokenizer encodes the whole canvas: its receptive field spans the canvas and
    its GroupNorm takes statistics over all of it, so the fill changes the codes, and so the reconstruction, of the
    kept pixels too (black strips beside a red circle on white turned it pink). Its own border is the fill that tells
    the tokenizer least that is not in the image."""
    top, left, bottom, right = pad
    if fill == EDGE:
        canvas = F.pad(image[None].float(), (left, right, top, bottom), mode="replicate")[0].to(torch.uint8)
    else:
        require(is_int_at_least(fill, 0) and fill <= 255, f"pad_value={fill}",
                f"must be {EDGE} (the image's border repeated) or a grey level in 0..255")
        canvas = F.pad(image, (left, right, top, bottom), value=fill)
    padded = torch.ones(canvas.shape[-2:], dtype=torch.bool)
    padded[top : top + image.shape[-2], left : left + image.shape[-1]] = False
    return canvas, padded


def requested_mask(spec: str | Sequence[int] | None, height: int, width: int) -> torch.Tensor:
    """The mask ``spec`` names on a ``height x width`` canvas: bool, True = regenerate. A mask image keeps its own
    size (carry it to the canvas with ``cells_touched``)."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "none"):
        return torch.zeros(height, width, dtype=torch.bool)
    if not isinstance(spec, str):
        return box_mask(list(spec), height, width)
    text = spec.strip()
    if text in HALVES:
        return half_mask(text, height, width)
    box = BOX_TEXT.fullmatch(text)
    if box:
        try:
            values = [int(v) for v in box.group(1).split(",")]
        except ValueError:
            raise ConfigError(f"mask={spec}: a box is four whole pixel numbers, box=[y0,x0,y1,x1]") from None
        return box_mask(values, height, width)
    return mask_image(Path(text), height, width)


def half_mask(half: str, height: int, width: int) -> torch.Tensor:
    mask = torch.zeros(height, width, dtype=torch.bool)
    rows, cols = height // 2, width // 2  # an odd side gives its middle row or column to the kept half
    if half == "top":
        mask[: height - rows] = True
    elif half == "bottom":
        mask[height - rows :] = True
    elif half == "left":
        mask[:, : width - cols] = True
    else:
        mask[:, width - cols :] = True
    return mask


def box_mask(box: list, height: int, width: int) -> torch.Tensor:
    if len(box) != 4 or not all(isinstance(v, int) for v in box):
        raise ConfigError(f"mask={box}: a box is four whole pixel numbers [y0,x0,y1,x1]")
    y0, x0, y1, x1 = box
    if not (y0 < y1 and x0 < x1):
        raise ConfigError(f"mask box [y0,x0,y1,x1]={box} is empty: it needs y0 < y1 and x0 < x1")
    if y0 < 0 or x0 < 0 or y1 > height or x1 > width:
        raise ConfigError(
            f"mask box [y0,x0,y1,x1]={box} reaches outside the {height} x {width} canvas (rows 0..{height}, columns "
            f"0..{width}); to draw beyond the image, grow the canvas with pad=[top,left,bottom,right]"
        )
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask


def mask_image(path: Path, height: int, width: int) -> torch.Tensor:
    """A black-and-white mask file: white = regenerate, at the file's own size."""
    if not path.is_file():
        raise MissingInputError(f"mask={path} is neither {', '.join(HALVES)}, none, a box [y0,x0,y1,x1] nor an "
                                "existing mask image file")
    rgb = np.asarray(open_image(path, "RGB"), dtype=np.int16)
    if np.abs(rgb - rgb[..., :1]).max() > 16:
        raise ConfigError(f"mask={path} is a colour image, not a mask: give black (keep) and white (regenerate) only")
    grey = rgb[..., 0]
    grey_share = float(((grey > GREY[0]) & (grey < GREY[1])).mean())
    if grey_share > MAX_GREY_SHARE:
        raise ConfigError(f"mask={path} is {grey_share:.0%} grey, not a mask: give black (keep) and white "
                          "(regenerate) only")
    rows, cols = grey.shape
    if abs(rows / cols - height / width) > 0.01 * height / width:
        raise ConfigError(f"mask={path} is {rows} x {cols} pixels, the canvas {height} x {width}: a mask image "
                          "must have the canvas's proportions (any size)")
    return torch.from_numpy(grey >= 128)


def cells_touched(mask: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``grid`` bool cells, each True when any True pixel of ``mask`` (``H x W``) overlaps it. Adaptive max pooling
    reads cell (i, j) from rows floor(i H / h) .. ceil((i + 1) H / h) - 1 (columns alike): every pixel that overlaps
    the cell, for sizes that divide or not, and for a grid finer than the mask too."""
    return F.adaptive_max_pool2d(mask[None, None].float(), grid)[0, 0].bool()
