"""A captioned folder of coloured shapes in the Hugging Face imagefolder layout (``metadata.jsonl`` beside
``images/``): a small dataset of one's own, made on the spot, for the benchmarks, the tests and the README's walk
through ``data=captions``.

Each image is one shape (circle, square, triangle) in one colour on a white canvas, at a random size and place;
its captions name both in three phrasings. One combination (``HELD_OUT``, a blue triangle) is never written, so that
a text-to-image model trained on the folder can be asked for something it has seen only in parts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 160, 50), "blue": (40, 70, 220), "yellow": (235, 200, 20)}
SHAPES = ("circle", "square", "triangle")
HELD_OUT = ("blue", "triangle")
PHRASINGS = ("a {colour} {shape}", "a {shape} that is {colour}", "{colour} {shape} on white")


def combinations(held_out: tuple[str, str] | None = HELD_OUT) -> list[tuple[str, str]]:
    """Every (colour, shape) pair the folder holds: all of them but ``held_out``."""
    return [(colour, shape) for colour in COLOURS for shape in SHAPES if (colour, shape) != held_out]


def draw_shape(colour: str, shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One ``size`` x ``size`` RGB image: the shape, filled, at a random radius (a fifth to a third of the side) and
    a random centre that keeps it inside the canvas."""
    # Drawn at 4x and reduced: antialiased edges, as photographs have.
    scale = 4
    side = size * scale
    radius = rng.uniform(0.2, 0.34) * side
    cx, cy = rng.uniform(radius, side - radius, size=2)
    image = Image.new("RGB", (side, side), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)
    elif shape == "square":
        half = radius * 0.85
        draw.rectangle((cx - half, cy - half, cx + half, cy + half), fill=fill)
    else:
        draw.polygon([(cx, cy - radius), (cx - radius, cy + radius * 0.8), (cx + radius, cy + radius * 0.8)],
                     fill=fill)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def write_shapes_folder(root: Path, n: int = 600, size: int = 32, seed: int = 0,
                        held_out: tuple[str, str] | None = HELD_OUT) -> Path:
    """``n`` images (the combinations in turn) under ``root/images/`` and ``root/metadata.jsonl``; returns ``root``."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pairs = combinations(held_out)
    rows = []
    for index in range(n):
        colour, shape = pairs[index % len(pairs)]
        name = f"images/{index:05d}.png"
        draw_shape(colour, shape, size, rng).save(root / name)
        rows.append({"file_name": name, "text": [p.format(colour=colour, shape=shape) for p in PHRASINGS]})
    (root / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return root


def _templates(height: int, width: int) -> dict[str, np.ndarray]:
    """Each shape drawn to fill a ``height x width`` box, as the folder draws it: bool masks."""
    rows, cols = np.mgrid[0:height, 0:width]
    y, x = (rows + 0.5) / height, (cols + 0.5) / width  # 0..1 across the box
    return {
        "circle": (2 * x - 1) ** 2 + (2 * y - 1) ** 2 <= 1,
        "square": np.ones((height, width), dtype=bool),
        "triangle": np.abs(2 * x - 1) <= y,  # apex at the top centre, base along the bottom
    }


def read_shape(image: np.ndarray) -> tuple[str, str] | None:
    """The (colour, shape) a uint8 ``H x W x 3`` image of this folder's kind shows, or None when it shows no one
    clear shape: too little ink, a colour far from every palette colour, or ink that overlaps no shape drawn in its
    bounding box well (intersection over union below 0.6).

    The colour is the palette colour nearest the mean of the non-white pixels; the shape is the one whose mask,
    drawn to fill the ink's bounding box, overlaps the ink best."""
    pixels = image.reshape(-1, 3).astype(np.float64)
    ink = (255 - pixels).max(axis=1) > 80
    if ink.sum() < 0.02 * len(pixels):
        return None
    mean = pixels[ink].mean(axis=0)
    names = list(COLOURS)
    distances = [np.linalg.norm(mean - np.array(COLOURS[name])) for name in names]
    if min(distances) > 70:
        return None
    mask = ink.reshape(image.shape[:2])
    rows, cols = np.nonzero(mask)
    box = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    overlaps = {shape: (box & template).sum() / (box | template).sum()
                for shape, template in _templates(*box.shape).items()}
    shape = max(overlaps, key=overlaps.get)
    if overlaps[shape] < 0.6:
        return None
    return names[int(np.argmin(distances))], shape
