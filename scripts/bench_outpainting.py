"""What the padding's fill does to the kept pixels of an outpainting edit.

    python scripts/bench_outpainting.py --tokenizer logs/my_tokenizer --shapes shapes/ [--pad 8] [--n 64]

``python -m parti_exp.edit pad=[p,p,p,p]`` writes, outside the regenerated strips, the tokenizer's reconstruction of
the padded canvas (resized to the model's size). This script pads ``--n`` images of ``scripts/make_shapes.py``'s
folder (coloured shapes on white) with each fill, ``pad_value=edge`` (the default: the image's border repeated),
0, 128 and 255, reconstructs the canvas with the tokenizer of a ``model=vqgan`` run on that folder, and prints the
mean absolute error of the kept pixels against the input (grey levels, 0-255) and the mean colour the shapes come
back with, each fill's error also as a ratio to the default's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from parti_exp.inference.edit_inputs import to_model_input
from parti_exp.inference.edit_mask import pad_image
from parti_exp.runtime.checkpoints import load_net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True, help="a model=vqgan run directory or checkpoint")
    parser.add_argument("--shapes", type=Path, required=True)
    parser.add_argument("--pad", type=int, default=8)
    parser.add_argument("--n", type=int, default=64)
    args = parser.parse_args()
    net, net_cfg = load_net(args.tokenizer, "generator", key="--tokenizer")
    net.eval()
    size = int(net_cfg["img_size"])
    rows = [json.loads(line) for line in (args.shapes / "metadata.jsonl").read_text().splitlines()][: args.n]
    images = [torch.from_numpy(np.asarray(Image.open(args.shapes / r["file_name"]).convert("RGB")).transpose(2, 0, 1)
                               .copy()) for r in rows]
    pad = (args.pad,) * 4
    results = {}
    for fill in ("edge", 0, 128, 255):
        errors, colours = [], []
        for image in images:
            canvas, padded = pad_image(image, pad, fill)
            model_input = to_model_input(canvas, size, "canvas")
            with torch.no_grad():
                reconstruction = net.decode(net.encode(model_input))
            keep = ~torch.nn.functional.interpolate(padded[None, None].float(), size=(size, size))[0, 0].bool()
            kept, wanted = (reconstruction[0] + 1) * 127.5, (model_input[0] + 1) * 127.5
            errors.append(float((kept - wanted).abs()[:, keep].mean()))
            shape = keep & ((255 - wanted).amax(0) > 80)  # the shape's pixels in the input
            colours.append((kept[:, shape].mean(1) - wanted[:, shape].mean(1)).abs().mean().item())
        results[fill] = (np.mean(errors), np.mean(colours))
    base = results["edge"][0]
    print(f"{len(images)} images, pad {args.pad} px on each side, tokenizer {args.tokenizer} ({size} px)")
    for fill, (error, colour) in results.items():
        print(f"pad_value={fill!s:5s} kept pixels |error| {error:6.2f} grey levels ({error / base:.2f} x edge); "
              f"shape colour off by {colour:6.2f}")


if __name__ == "__main__":
    main()
