"""Epoch-end FID time of our metrics callback against torch_fidelity.calculate_metrics, same images, one run.

    python scripts/bench_metrics.py [--num-fake 500] [--num-real 500] [--batch-size 100] [--repeats 2] [--threads N]

Ours: ``InceptionMetrics.measure`` with a warm real-statistics cache, i.e. what runs at the end of a validation
epoch: generate ``num_fake`` images with an (untrained) DCGAN, one Inception pass for FID + IS + KID, then
torchmetrics' compute. Baseline: ``torch_fidelity.calculate_metrics`` on exactly the same generated images
(regenerated with the same latents and handed over as a dataset, so its time excludes generation), with the same
Inception weights file, its own cache of the real images' features warmed by a first call, the same batch size,
and no DataLoader worker processes (``save_cpu_ram``, cheaper than its default four for in-memory images).
The weights are a randomly initialised InceptionV3 (offline): the cost of a forward pass does not depend on them.
Real images: ``num_real`` of scikit-learn's digits at 32 px, as in ``data=digits``. Each path is timed
``repeats`` times and the fastest run is reported (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch_fidelity
from hydra import compose, initialize_config_dir
from lightning.pytorch.strategies import SingleDeviceStrategy
from threadpoolctl import threadpool_limits
from torch.utils.data import Dataset

from parti_exp import CONF_DIR
from parti_exp.builders import build_datamodule, build_module
from parti_exp.metrics.callback import InceptionMetrics
from parti_exp.metrics.generated_images import generated_batches
from parti_exp.metrics.inception import random_weights_file


class RGBImages(Dataset):
    """uint8 images for torch-fidelity, grayscale repeated to RGB as when it reads a grayscale PNG."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def timed(fn, repeats: int = 1):
    """(fastest wall time over ``repeats`` calls, the last result)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-fake", type=int, default=500)
    parser.add_argument("--num-real", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads of torch and of numpy's BLAS, for both paths (default: theirs)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(limits=args.threads)  # numpy's OpenBLAS too: torch-fidelity's FID runs in numpy

    with tempfile.TemporaryDirectory(prefix="bench_metrics_") as tmp:  # weights and caches: ~170 MB
        run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> None:
    weights = random_weights_file(tmp / "inception.pth")
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name="train", overrides=[f"paths.root_dir={tmp}", f"paths.output_dir={tmp / 'run'}"])
    torch.manual_seed(0)  # the same untrained generator, and so the same images, on every run
    datamodule, model = build_datamodule(cfg), build_module(cfg)
    strategy = SingleDeviceStrategy(device=torch.device("cpu"))
    kid_subset_size = min(1000, args.num_fake, args.num_real)
    settings = dict(
        weights_path=str(weights),
        num_fake=args.num_fake,
        num_real=args.num_real,
        batch_size=args.batch_size,
        cache_dir=str(tmp / "cache"),
        kid_subset_size=kid_subset_size,
    )
    print(
        f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, no GPU used; "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), torch-fidelity {torch_fidelity.__version__}"
    )
    print(
        f"timing: fastest of {args.repeats}; images: {args.num_fake} generated (DCGAN, 1x32x32) vs "
        f"{args.num_real} real digits; batch "
        f"{args.batch_size}; FID + IS (10 splits) + KID (100 subsets of {kid_subset_size})"
    )

    cold, _ = timed(lambda: InceptionMetrics(**settings).prepare(datamodule, strategy))
    print(f"one-time real-image statistics (ours, cache miss): {cold:.1f} s")
    ours = InceptionMetrics(**settings)
    setup, _ = timed(lambda: ours.prepare(datamodule, strategy))
    epoch_end, values = timed(lambda: ours.measure(model, strategy), args.repeats)

    real_images, labels = ours.real_images(datamodule)
    fake = torch.cat(
        list(generated_batches(model, args.num_fake, args.batch_size, ours.seed, torch.from_numpy(labels)))
    )
    common = dict(
        input1=RGBImages(fake),
        input2=RGBImages(torch.from_numpy(np.ascontiguousarray(real_images))),
        input2_cache_name=f"bench_real_{args.num_real}",
        cache_root=str(tmp / "fidelity_cache"),
        feature_extractor_weights_path=str(weights),
        batch_size=args.batch_size,
        cuda=False,
        save_cpu_ram=True,
        verbose=False,
    )
    all_three = dict(fid=True, isc=True, kid=True, kid_subset_size=kid_subset_size)
    torch_fidelity.calculate_metrics(**common, **all_three)  # warms its cache of the real images' features
    fidelity_all, theirs = timed(lambda: torch_fidelity.calculate_metrics(**common, **all_three), args.repeats)
    fidelity_fid, _ = timed(lambda: torch_fidelity.calculate_metrics(**common, fid=True), args.repeats)

    print(f"FID ours {values['fid']:.6g} vs torch-fidelity {theirs['frechet_inception_distance']:.6g} (same images)")
    print("path                                              seconds | ours / torch-fidelity")
    print(f"ours: epoch end (measure), FID + IS + KID     {epoch_end:11.1f} |")
    print(f"ours: setup with warm cache + epoch end       {setup + epoch_end:11.1f} |")
    print(f"torch-fidelity calculate_metrics FID + IS + KID {fidelity_all:9.1f} | {epoch_end / fidelity_all:.2f}x")
    print(f"torch-fidelity calculate_metrics FID only     {fidelity_fid:11.1f} | {epoch_end / fidelity_fid:.2f}x")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
