"""How well the projector finds held-out digits in a briefly trained digits GAN.

    python scripts/bench_projector.py [--ckpt RUN/checkpoints/last.ckpt] [--n 50] [--steps 100]
        [--spaces w w+ [w+/fixed z]] [--distance pixels] [--keep DIR] [TRAIN OVERRIDE ...]

Without ``--ckpt`` it first trains ``python -m parti_exp.train model=stylegan_lite`` (its digits setting, plus the
overrides given, e.g. ``trainer.max_epochs=15``). Targets: the first ``--n`` digits of ``DigitsDataModule``'s
validation split (16 px, exactly as the data module feeds them; training never sees them), written as PNG files and
projected by ``python -m parti_exp.project`` in each space (``SPACE/fixed``: with the generator's fixed noise maps
instead of optimised ones, ``optimize_noise=false``, which tells how much of the fit the noise maps carry). Reports,
per space:

- PSNR of the projection (the PNG the saved latent regenerates) against its target, and the same for the projector's
  starting image (the mean w's image, or the best prior draw for z): the baseline measured in the same run;
- how often each outside judge (tests/judges.py, fitted on the data module's *training* split only) confidently reads
  the target's own digit in the projection, the stricter judge's rate, and the same rates on the targets themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from parti_exp.data.digits import DigitsDataModule

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from judges import data_module_train_split, judges, to_digit_grid  # noqa: E402


def read_pngs(paths: list[Path]) -> torch.Tensor:
    pixels = np.stack([np.asarray(Image.open(p).convert("L"), dtype=np.float32) for p in paths])
    return torch.from_numpy(pixels).unsqueeze(1) / 127.5 - 1


def own_digit_rates(images: torch.Tensor, labels: np.ndarray, fit: tuple[int, ...]) -> dict[str, float]:
    """Per judge, the share of images it confidently reads as their label; ``stricter``: the smaller."""
    grid = to_digit_grid(images)
    rates = {}
    for judge in judges(fit):
        reading = judge.read(grid)
        rates[judge.name] = float((reading.confident & (reading.digits == labels)).mean())
    rates["stricter"] = min(rates.values())
    return rates


def psnr_db(images: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean per-image PSNR (dB), images in [-1, 1] (peak-to-peak 2)."""
    mse = (images - targets).square().flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(4 / mse)).mean())


def run(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", *command], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", type=Path, help="a digits GAN checkpoint (default: train stylegan_lite first)")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--spaces", nargs="+", default=["w", "w+"])
    parser.add_argument("--distance", default="pixels")
    parser.add_argument("--keep", type=Path, help="a folder to work in and keep (default: a temporary one)")
    parser.add_argument("overrides", nargs="*", help="overrides of the training command")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        ckpt = args.ckpt
        if ckpt is None:
            seconds = run(["parti_exp.train", "model=stylegan_lite", "trainer.cpu_threads=1", "logger=csv",
                           f"paths.data_dir={work / 'data'}", f"hydra.run.dir={work / 'run'}", *args.overrides])
            ckpt = work / "run" / "checkpoints" / "last.ckpt"
            print(f"trained model=stylegan_lite {' '.join(args.overrides)}: {seconds:.0f} s")

        data = DigitsDataModule(img_size=16)
        data.setup("fit")
        targets_dir = work / "targets"
        targets_dir.mkdir(exist_ok=True)
        images, labels = data.val_set.images[: args.n], np.asarray(data.val_set.labels[: args.n])
        target_paths = [targets_dir / f"{i:03d}.png" for i in range(len(images))]
        for path in targets_dir.glob("*.png"):
            path.unlink()  # a kept folder's earlier targets would be projected too
        for path, image in zip(target_paths, images):
            Image.fromarray(image[0]).save(path)
        targets = read_pngs(target_paths)
        fit = data_module_train_split()
        real = own_digit_rates(targets, labels, fit)
        print(f"targets: {args.n} held-out digits; judges read their own digit: "
              + ", ".join(f"{k} {v:.2f}" for k, v in real.items()))

        for variant in args.spaces:
            space, _, fixed = variant.partition("/")
            out = work / f"projected_{space}{'_fixed' if fixed else ''}_{args.distance}"
            seconds = run(["parti_exp.project", f"ckpt_path={ckpt}", f"image={targets_dir}", f"out_dir={out}",
                           f"space={space}", f"steps={args.steps}", f"distance={args.distance}", "device=cpu",
                           f"optimize_noise={not fixed}", f"hydra.run.dir={work / 'project_run'}"])
            projections = read_pngs([out / p.name for p in target_paths])
            manifest = json.loads((out / "manifest.json").read_text())
            starts = [p["distance_start"] for p in manifest["projections"]]
            ends = [p["distance_end"] for p in manifest["projections"]]
            rates = own_digit_rates(projections, labels, fit)
            # The starting image's PSNR from its pixel MSE (distance=pixels is that MSE).
            start_psnr = (float(np.mean([10 * np.log10(4 / s) for s in starts])) if args.distance == "pixels"
                          else float("nan"))
            print(f"space={variant} distance={args.distance} steps={args.steps}: {seconds:.0f} s for {args.n} images; "
                  f"PSNR {psnr_db(projections, targets):.2f} dB (start {start_psnr:.2f} dB); distance "
                  f"{np.mean(starts):.4f} -> {np.mean(ends):.4f}; own digit read in projections: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in rates.items())
                  + f" (ratio to the targets' stricter rate {rates['stricter'] / real['stricter']:.2f})")


if __name__ == "__main__":
    main()
