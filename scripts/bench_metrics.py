"""Epoch-end FID time of our metrics callback against torch_fidelity.calculate_metrics, same images, one run;
and what precision / recall / density / coverage add to the epoch-end time, in both feature spaces.

    python scripts/bench_metrics.py [--num-fake 500] [--num-real 500] [--batch-size 100] [--repeats 2] [--threads N]
                                    [--prdc-num-fake 2000] [--prdc-spaces classifier inception]

Ours: ``InceptionMetrics.measure`` with a warm real-statistics cache, i.e. what runs at the end of a validation
epoch: generate ``num_fake`` images with an (untrained) DCGAN, one Inception pass for FID + IS + KID, then
torchmetrics' compute. Baseline: ``torch_fidelity.calculate_metrics`` on exactly the same generated images
(regenerated with the same latents and handed over as a dataset, so its time excludes generation), with the same
Inception weights file, its own cache of the real images' features warmed by a first call, the same batch size,
and no DataLoader worker processes (``save_cpu_ram``, cheaper than its default four for in-memory images).
The weights are a randomly initialised InceptionV3 (offline): the cost of a forward pass does not depend on them.
Real images: ``num_real`` of scikit-learn's digits at 32 px, as in ``data=digits``. Each path is timed
``repeats`` times and the fastest run is reported (the machine may be shared). This comparison leaves out
precision / recall / density / coverage (``prdc=False``), which torch-fidelity's call does not compute either.

Then the cost of those four: ``measure`` at ``prdc_num_fake`` generated images with ``prdc=True`` against
``prdc=False``, runs interleaved, for ``metrics=classifier`` (the whole digits train split as real images, its
default batch size) and ``metrics=inception`` (``num_real`` real images), each with a warm cache. The time
spent inside the four metrics' ``compute()`` is reported too: it is the whole of their extra work (their
``update`` only appends the features the same pass made), and unlike the difference of two runs it does not
move with the machine's other load.
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
from parti_exp.metrics.generated_images import generated_batches
from parti_exp.metrics.image_quality import ClassifierMetrics, InceptionMetrics
from parti_exp.metrics.inception import random_weights_file
from parti_exp.metrics.prdc import PrecisionRecallDensityCoverage


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
    parser.add_argument("--prdc-num-fake", type=int, default=2000, help="generated images for the prdc cost")
    parser.add_argument(
        "--prdc-spaces",
        nargs="*",
        choices=("classifier", "inception"),
        default=["classifier", "inception"],
        help="feature spaces for the prdc cost (inception at 2000 images takes minutes per run on a CPU)",
    )
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
        prdc=False,
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
    prdc_cost(args, settings, datamodule, model, strategy)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def prdc_cost(args: argparse.Namespace, settings: dict, datamodule, model, strategy: SingleDeviceStrategy) -> None:
    """Epoch-end time with the four metrics against without them, for both feature spaces."""
    compute_seconds = []
    compute = PrecisionRecallDensityCoverage.compute

    def timed_compute(self):
        start = time.perf_counter()
        values = compute(self)
        compute_seconds.append(time.perf_counter() - start)
        return values

    # Patched on the class: torchmetrics wraps each instance's compute() around the class's at construction.
    PrecisionRecallDensityCoverage.compute = timed_compute
    num = args.prdc_num_fake
    spaces = {
        "classifier": lambda prdc: ClassifierMetrics(
            num_fake=num, cache_dir=settings["cache_dir"], batch_size=500, kid_subset_size=1000, prdc=prdc
        ),
        "inception": lambda prdc: InceptionMetrics(**{**settings, "num_fake": num, "prdc": prdc}),
    }
    print(f"precision / recall / density / coverage at epoch end, {num} generated images, fastest of {args.repeats}:")
    print("feature space  real (kNN)  without (s)  with (s) | with / without | in their compute (s) | share")
    for space in args.prdc_spaces:
        build = spaces[space]
        with_four, without = build(True), build(False)
        for callback in (with_four, without):
            callback.prepare(datamodule, strategy)  # warm caches: the real statistics, the kNN subset
        best = {True: float("inf"), False: float("inf")}
        compute_seconds.clear()
        for _ in range(args.repeats):
            for prdc, callback in ((True, with_four), (False, without)):
                seconds, _ = timed(lambda callback=callback: callback.measure(model, strategy))
                best[prdc] = min(best[prdc], seconds)
        inside = min(compute_seconds)
        real = len(with_four.metrics.prdc.real_features)
        print(
            f"{space:13s} {real:11d} {best[False]:12.2f} {best[True]:9.2f} | {best[True] / best[False]:14.3f} | "
            f"{inside:20.3f} | {inside / best[False]:.1%}"
        )
    PrecisionRecallDensityCoverage.compute = compute


if __name__ == "__main__":
    main()
