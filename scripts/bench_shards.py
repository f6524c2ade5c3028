"""Streaming webdataset shards (``data=webdataset``) against torchvision's ``ImageFolder`` + ``DataLoader`` over the
same JPEGs, and the uint8 cache of ``data=folder`` after its one-time build; then the memory of a long stream.

    python scripts/bench_shards.py [--images 4000] [--sizes 32 128] [--num-workers 0 2] [--batch-size 64]
    python scripts/bench_shards.py --rss 10000 100000      # peak RSS while streaming that many samples

Images: smooth random colour images (upsampled noise, so the JPEGs have realistic sizes), 10 classes, written once
as an ImageFolder tree and as shards of 1,000 samples in img2dataset's layout (``.jpg`` + ``.cls`` + ``.json``),
JPEG quality 95. Every pipeline yields float batches in [-1, 1] with random flips, as training reads them: ours
through ``on_after_batch_transfer``, torchvision's through Resize + CenterCrop + ToTensor + Normalize +
RandomHorizontalFlip per image. The first batch of each measurement is not timed (worker start-up). Measurements are
interleaved (shards, folder, cache, shards, ...) so that load from other processes falls on all alike.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
import torch
import webdataset as wds
from bench_data import images_per_second
from lightning.pytorch import Trainer
from PIL import Image
from step_timing import describe_machine, interleaved_runs
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import ImageFolder

from parti_exp.data import FolderDataModule, WebDatasetDataModule
from parti_exp.runtime.console import quiet_library_noise


def smooth_image(rng: np.random.Generator, size: int) -> Image.Image:
    low = rng.integers(0, 256, (max(2, size // 8), max(2, size // 8), 3), dtype=np.uint8)
    return Image.fromarray(low).resize((size, size), Image.BICUBIC)


def write_data(root: Path, n: int, size: int) -> tuple[Path, Path]:
    """The same ``n`` JPEGs as ``root/folder/<class>/<i>.jpg`` and as ``root/shards/{00000..}.tar``."""
    rng = np.random.default_rng(0)
    folder, shards = root / "folder", root / "shards"
    shards.mkdir(parents=True)
    with wds.ShardWriter(str(shards / "%05d.tar"), maxcount=1000, verbose=0) as sink:
        for index in range(n):
            label = index % 10
            buffer = io.BytesIO()
            smooth_image(rng, size).save(buffer, "JPEG", quality=95)
            (folder / str(label)).mkdir(parents=True, exist_ok=True)
            (folder / str(label) / f"{index:09d}.jpg").write_bytes(buffer.getvalue())
            key = f"{index:09d}"
            sink.write({"__key__": key, "jpg": buffer.getvalue(), "cls": label, "json": json.dumps({"key": key})})
    return folder, shards


def training(module) -> None:
    """``on_after_batch_transfer`` flips only while a trainer is training, as in a real fit."""
    module.trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    module.trainer.training = True


def shards_rate(shards: Path, size: int, batch: int, workers: int) -> float:
    module = WebDatasetDataModule(str(shards), img_size=size, channels=3, num_classes=10, caption_key=None,
                                  label_key="cls", val_samples=batch, reference_samples=batch, batch_size=batch,
                                  num_workers=workers, hflip=True, seed=0)
    training(module)
    return images_per_second(module.train_dataloader(), lambda b: module.on_after_batch_transfer(b, 0), 1)


def cache_rate(folder: Path, cache: Path, size: int, batch: int, workers: int) -> float:
    module = FolderDataModule(folder, root=folder.parent, img_size=size, num_classes=10, batch_size=batch,
                              num_workers=workers, hflip=True, cache_dir=cache)
    training(module)
    return images_per_second(module.train_dataloader(), lambda b: module.on_after_batch_transfer(b, 0), 1)


def torchvision_rate(folder: Path, size: int, batch: int, workers: int) -> float:
    dataset = ImageFolder(folder, transform=transforms.Compose([
        transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), transforms.RandomHorizontalFlip()]))
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers)
    return images_per_second(loader, lambda b: b, 1)


def throughput(args) -> None:
    print(f"{'px':>4} | {'workers':>7} | {'shards img/s':>12} | {'ImageFolder img/s':>17} | "
          f"{'uint8 cache img/s':>17} | shards / ImageFolder")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder, shards = write_data(Path(tmp), args.images, size)
            cache = Path(tmp) / "cache"
            started = time.perf_counter()
            FolderDataModule(folder, root=Path(tmp), img_size=size, num_classes=10, cache_dir=cache,
                             decode_workers=1).prepare_data()
            build = time.perf_counter() - started
            for workers in args.num_workers:
                settings = (size, args.batch_size, workers)
                rates = interleaved_runs({
                    "shards": lambda s=settings, at=shards: shards_rate(at, *s),
                    "folder": lambda s=settings, at=folder: torchvision_rate(at, *s),
                    "cache": lambda s=settings, at=folder, c=cache: cache_rate(at, c, *s),
                }, args.repeats)
                s, f, c = (median(rates[k]) for k in ("shards", "folder", "cache"))
                print(f"{size:>4} | {workers:>7} | {s:>12,.0f} | {f:>17,.0f} | {c:>17,.0f} | {s / f:.2f}x")
            print(f"     (uint8 cache one-time build of {args.images} images at {size} px, 1 process: {build:.1f} s)")


def peak_rss(args) -> None:
    """Stream ``n`` samples (32 px) through the shard loader in this process; report the peak RSS after each."""
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(tmp) / "shards"
        shards.mkdir()
        rng = np.random.default_rng(0)
        buffer = io.BytesIO()
        smooth_image(rng, 32).save(buffer, "JPEG", quality=95)
        jpeg = buffer.getvalue()  # one image repeated: memory, not decoding, is measured here
        with wds.ShardWriter(str(shards / "%05d.tar"), maxcount=10_000, verbose=0) as sink:
            for index in range(max(args.rss)):
                sink.write({"__key__": f"{index:09d}", "jpg": jpeg, "cls": index % 10})
        module = WebDatasetDataModule(str(shards), img_size=32, channels=3, num_classes=10, caption_key=None,
                                      label_key="cls", val_samples=64, reference_samples=64, batch_size=64,
                                      num_workers=0, seed=0)
        module.setup()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        seen, loader = 0, iter(module.train_dataloader())
        for target in sorted(args.rss):
            for images, _ in loader:
                seen += len(images)
                if seen >= target - 64:
                    break
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"peak RSS after streaming {seen:,} samples: {rss:.0f} MB (after setup: {before:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--num-workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rss", type=int, nargs="+", help="measure peak RSS after streaming these many samples")
    args = parser.parse_args()
    quiet_library_noise()
    torch.set_num_threads(1)  # DataLoader workers use one each; the main process too, as in bench_data.py
    print(describe_machine())
    if args.rss:
        peak_rss(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
