"""Files in the exact on-disk formats the DataModules read, written by tests of any folder (``tests/data/conftest.py``
holds the other formats): what was written comes back, so tests can compare pixels and labels against it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from parti_exp.testing.py2_pickle import py2_pickle


@dataclass
class Written:
    """What a ``make_*`` fixture wrote: the split arrays (``N x C x H x W`` uint8 as stored) and file paths."""

    root: Path
    images: dict[str, np.ndarray] = field(default_factory=dict)
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    files: dict[str, list[Path]] = field(default_factory=dict)


def write_cifar10(root: Path, per_batch: int = 8, n_test: int = 16, seed: int = 0) -> Written:
    """The five training batches, test_batch and batches.meta, pickled like the official python version
    (Python 2 pickles of dicts with ``data`` (uint8 N x 3072) and ``labels``; ``label_names`` in the meta)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    written = Written(root)
    batches = [(f"data_batch_{i}", f"training batch {i} of 5", per_batch) for i in range(1, 6)]
    for name, description, n in [*batches, ("test_batch", "testing batch 1 of 1", n_test)]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        batch = {
            b"batch_label": description.encode(),
            b"labels": labels,
            b"data": data,
            b"filenames": [f"image_{name}_{i}.png".encode() for i in range(n)],
        }
        (folder / name).write_bytes(py2_pickle(batch))
        split = "val" if name == "test_batch" else "train"
        written.files.setdefault(split, []).append(folder / name)
        written.images[split] = np.concatenate(
            [written.images.get(split, np.empty((0, 3, 32, 32), np.uint8)), data.reshape(-1, 3, 32, 32)]
        )
        written.labels[split] = np.concatenate([written.labels.get(split, np.empty(0, np.int64)), labels])
    meta = {
        b"num_cases_per_batch": per_batch,
        b"label_names": [
            b"airplane",
            b"automobile",
            b"bird",
            b"cat",
            b"deer",
            b"dog",
            b"frog",
            b"horse",
            b"ship",
            b"truck",
        ],
        b"num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(py2_pickle(meta))
    return written
