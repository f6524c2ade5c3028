"""Training-batch throughput of our CIFAR-10 pipeline against torchvision's per-image pipeline, same data, one run.

    python scripts/bench_data.py [--images 50000] [--batch-size 128] [--num-workers 0 2] [--epochs 2] [--threads 1]

Ours: CIFAR10DataModule.train_dataloader (batched fetch from the uint8 cache) + on_after_batch_transfer
(to [-1, 1] and random flips, as during training). Baseline: torchvision's CIFAR10 dataset with
ToTensor, Normalize and RandomHorizontalFlip per image, in a DataLoader with the same batch size, workers,
shuffling and drop_last. Both read the same synthetic CIFAR-10 written in the real pickle format to a temporary
directory (random pixels: decoding cost does not depend on them). The first batch of each pipeline is not timed
(worker start-up); the one-time cache build is reported separately.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchvision
from lightning.pytorch import Trainer
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import CIFAR10

from parti_exp.data import CIFAR10DataModule
from parti_exp.testing.py2_pickle import py2_pickle


def write_synthetic_cifar10(root: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """Five training batches, test_batch and batches.meta, pickled like the official python version."""
    rng = np.random.default_rng(seed)
    folder = root / CIFAR10.base_folder
    folder.mkdir(parents=True)
    sizes = [(f"data_batch_{i + 1}", n_train // 5 + (i < n_train % 5)) for i in range(5)] + [("test_batch", n_test)]
    for name, n in sizes:
        batch = {
            b"batch_label": name.encode(),
            b"labels": rng.integers(0, 10, size=n).tolist(),
            b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            b"filenames": [f"{name}_{i}.png".encode() for i in range(n)],
        }
        (folder / name).write_bytes(py2_pickle(batch))
    meta = {b"label_names": [f"class_{i}".encode() for i in range(10)], b"num_cases_per_batch": n_train // 5}
    (folder / "batches.meta").write_bytes(py2_pickle(meta))


def synthetic_cifar10_class(root: Path) -> type[CIFAR10]:
    """torchvision's CIFAR10 with the md5 table of the synthetic files, so its own loading code runs unchanged."""
    folder = root / CIFAR10.base_folder

    def md5(name: str) -> str:
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    return type(
        "SyntheticCIFAR10",
        (CIFAR10,),
        {
            "train_list": [[name, md5(name)] for name, _ in CIFAR10.train_list],
            "test_list": [[name, md5(name)] for name, _ in CIFAR10.test_list],
            "meta": {**CIFAR10.meta, "md5": md5(CIFAR10.meta["filename"])},
        },
    )


def images_per_second(loader: DataLoader, finish: Callable, epochs: int) -> float:
    """Images per second over ``epochs`` epochs, timed from the arrival of the first batch."""
    count, start = 0, None
    for _ in range(epochs):
        for batch in loader:
            images, _ = finish(batch)
            if start is None:
                start = time.perf_counter()
                continue
            count += len(images)
    assert images.dtype == torch.float32 and -1 <= images.min() <= images.max() <= 1
    return count / (time.perf_counter() - start)


def ours(root: Path, batch_size: int, num_workers: int, epochs: int) -> float:
    dm = CIFAR10DataModule(root=root, batch_size=batch_size, num_workers=num_workers, verify=False)
    dm.setup()
    # on_after_batch_transfer flips only while a trainer is training, as in a real fit.
    dm.trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    dm.trainer.training = True
    return images_per_second(dm.train_dataloader(), lambda batch: dm.on_after_batch_transfer(batch, 0), epochs)


def torchvision_baseline(root: Path, batch_size: int, num_workers: int, epochs: int) -> float:
    dataset = synthetic_cifar10_class(root)(
        root,
        train=True,
        transform=transforms.Compose(
            [
                transforms.ToTensor(),
                transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
                transforms.RandomHorizontalFlip(),
            ]
        ),
    )
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
    return images_per_second(loader, lambda batch: batch, epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=50_000, help="training images in the synthetic CIFAR-10")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--num-workers", type=int, nargs="+", default=[0, 2], help="one row per value")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads in the main process (DataLoader workers always use 1). Where other jobs share "
        "the cores, 2+ threads stall on each other in these small ops and the timings become noise",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"machine: {platform.system()} {platform.machine()}, {cpus} CPUs, no GPU used; "
        f"torch {torch.__version__}, torchvision {torchvision.__version__}"
    )
    print(
        f"data: synthetic CIFAR-10 ({args.images} train images, real pickle format), batch {args.batch_size}, "
        f"{args.epochs} epoch(s) per measurement, shuffle + drop_last, "
        f"{args.threads} torch thread(s) in the main process"
    )

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_synthetic_cifar10(root, args.images, n_test=1000)
        start = time.perf_counter()
        CIFAR10DataModule(root=root, verify=False).prepare_data()
        print(f"one-time uint8 cache build (both splits): {time.perf_counter() - start:.2f} s")

        print(f"{'num_workers':>11} | {'parti_exp images/s':>18} | {'torchvision images/s':>20} | speed-up")
        rates = {}
        for num_workers in args.num_workers:
            rates[num_workers] = (
                ours(root, args.batch_size, num_workers, args.epochs),
                torchvision_baseline(root, args.batch_size, num_workers, args.epochs),
            )
            ours_rate, baseline_rate = rates[num_workers]
            print(
                f"{num_workers:>11} | {ours_rate:>18,.0f} | {baseline_rate:>20,.0f} | {ours_rate / baseline_rate:.1f}x"
            )
    if len(rates) > 1:
        best_ours = max(rates, key=lambda n: rates[n][0])
        best_baseline = max(rates, key=lambda n: rates[n][1])
        print(
            f"each at its best num_workers: parti_exp ({best_ours}) / torchvision ({best_baseline}) = "
            f"{rates[best_ours][0] / rates[best_baseline][1]:.1f}x"
        )


if __name__ == "__main__":
    main()
