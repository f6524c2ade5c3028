"""Tiny datasets written in the exact on-disk formats the DataModules read (no network).

Each ``make_*`` fixture is a factory: call it with a directory (and options) to write the files; it returns
what was written, so tests can compare pixels and labels against it.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from dataset_files import Written, write_cifar10
from lightning.pytorch import Trainer
from PIL import Image

from parti_exp.data.captions.labels import CELEBA_ATTRIBUTES


def write_idx(path: Path, array: np.ndarray) -> None:
    """An idx file of unsigned bytes: magic 0x00 0x00 0x08 <ndim>, big-endian int32 dims, then the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def write_mnist(root: Path, n_train: int = 48, n_val: int = 16, gz: bool = False, seed: int = 0) -> Written:
    rng = np.random.default_rng(seed)
    written = Written(root)
    for split, prefix, n in (("train", "train", n_train), ("val", "t10k", n_val)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if gz else ""
        files = [
            root / "MNIST" / "raw" / f"{prefix}-images-idx3-ubyte{suffix}",
            root / "MNIST" / "raw" / f"{prefix}-labels-idx1-ubyte{suffix}",
        ]
        write_idx(files[0], images)
        write_idx(files[1], labels)
        written.images[split], written.labels[split], written.files[split] = images[:, None], labels, files
    return written




def write_celeba(
    root: Path, partition: tuple[int, ...] = (24, 6, 6), size: tuple[int, int] = (36, 44), seed: int = 0
) -> Written:
    """``celeba/img_align_celeba/000001.jpg ...`` (``size`` = width x height; the real files are 178 x 218) and
    the list files in their exact text formats. ``images``/``labels`` hold the attributes per split (0/1)."""
    rng = np.random.default_rng(seed)
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    total = sum(partition)
    names = [f"{i:06d}.jpg" for i in range(1, total + 1)]
    splits = np.repeat([0, 1, 2], partition)
    attributes = rng.choice([-1, 1], size=(total, len(CELEBA_ATTRIBUTES)))
    for name in names:
        Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(
            folder / "img_align_celeba" / name, quality=95
        )
    (folder / "list_eval_partition.txt").write_text("".join(f"{n} {s}\n" for n, s in zip(names, splits)))
    rows = "".join(f"{n} " + " ".join(f"{v:2d}" for v in row) + "\n" for n, row in zip(names, attributes))
    (folder / "list_attr_celeba.txt").write_text(f"{total}\n" + " ".join(CELEBA_ATTRIBUTES) + " \n" + rows)
    written = Written(root)
    for split, number in (("train", 0), ("val", 1)):
        chosen = np.flatnonzero(splits == number)
        written.files[split] = [folder / "img_align_celeba" / names[i] for i in chosen]
        written.labels[split] = (attributes[chosen] == 1).astype(np.int64)
    return written


def write_folder(
    root: Path,
    classes: tuple[str, ...] = ("cat", "dog", "eel"),
    per_class: int = 10,
    size: tuple[int, int] = (24, 24),
    seed: int = 0,
) -> Written:
    """PNGs (lossless, so pixels can be compared exactly) in one subfolder per class; no classes: flat folder.
    ``images["all"]``/``labels["all"]``/``files["all"]`` are in sorted path order."""
    rng = np.random.default_rng(seed)
    written = Written(root)
    entries = []
    for label, name in enumerate(classes or ("",)):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
            path = root / name / f"img_{i:03d}.png"
            Image.fromarray(pixels).save(path)
            entries.append((path, pixels.transpose(2, 0, 1), label))
    entries.sort(key=lambda entry: entry[0])
    written.files["all"] = [path for path, _, _ in entries]
    written.images["all"] = np.stack([pixels for _, pixels, _ in entries])
    written.labels["all"] = np.asarray([label for _, _, label in entries], dtype=np.int64)
    return written


@pytest.fixture
def make_mnist():
    return write_mnist


@pytest.fixture
def make_cifar10():
    return write_cifar10


@pytest.fixture
def make_celeba():
    return write_celeba


@pytest.fixture
def make_folder():
    return write_folder


@pytest.fixture
def trainer() -> Trainer:
    """A Trainer to attach to a DataModule so that ``on_after_batch_transfer`` sees a training or eval stage."""
    return Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
