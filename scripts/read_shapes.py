"""Read back the samples of a text-to-image model trained on scripts/make_shapes.py's folder: for each prompt folder
that `python -m parti_exp.sample` wrote, the share of images showing the prompt's colour and shape.

    python scripts/read_shapes.py SAMPLES_DIR [--real SHAPES_DIR]

The reader (``parti_exp.testing.shapes.read_shape``: nearest palette colour of the ink, shape from how much of its
bounding box it fills) is checked first on the real images (``--real``; all should be read right) and on two
negative controls it must not read as any prompt: blends of two shapes of different colours, and noise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from parti_exp.testing.shapes import COLOURS, SHAPES, read_shape


def parse_prompt(prompt: str) -> tuple[str, str] | None:
    words = prompt.lower().split()
    colour = next((w for w in words if w in COLOURS), None)
    shape = next((w for w in words if w in SHAPES), None)
    return (colour, shape) if colour and shape else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("samples", type=Path)
    parser.add_argument("--real", type=Path)
    args = parser.parse_args()
    if args.real is not None:
        rows = [json.loads(line) for line in (args.real / "metadata.jsonl").read_text().splitlines()]
        images = [np.asarray(Image.open(args.real / row["file_name"]).convert("RGB")) for row in rows]
        right = [read_shape(image) == parse_prompt(row["text"][0]) for image, row in zip(images, rows)]
        print(f"real images read right: {np.mean(right):.3f} of {len(right)}")
        blends = [((a.astype(int) + b) // 2).astype(np.uint8) for a, b in zip(images[::2], images[1::2])]
        prompts = [parse_prompt(row["text"][0]) for row in rows]
        blend_pairs = list(zip(prompts[::2], prompts[1::2]))
        fooled = [read_shape(image) in pair for image, pair in zip(blends, blend_pairs) if pair[0][0] != pair[1][0]]
        print(f"blends of two colours read as one of their shapes: {np.mean(fooled):.3f} of {len(fooled)}")
        noise = np.random.default_rng(0).integers(0, 256, (200, *images[0].shape), dtype=np.uint8)
        print(f"noise images read as a shape: {np.mean([read_shape(n) is not None for n in noise]):.3f} of 200")
    manifest = json.loads((args.samples / "manifest.json").read_text())
    by_folder: dict[str, list[Path]] = {}
    for name in manifest["images"]:
        by_folder.setdefault(Path(name).parent.name, []).append(args.samples / name)
    for prompt in manifest["settings"]["prompts"]:
        wanted = parse_prompt(prompt)
        folder = next(f for f in by_folder if f == "".join(c if c.isalnum() else "_" for c in prompt.strip().lower()))
        reads = [read_shape(np.asarray(Image.open(p).convert("RGB"))) for p in by_folder[folder]]
        print(f"{prompt!r}: {sum(r == wanted for r in reads)} of {len(reads)} read as {' '.join(wanted)}; "
              f"read: {reads}")


if __name__ == "__main__":
    main()
