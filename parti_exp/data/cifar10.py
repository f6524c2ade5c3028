"""CIFAR-10 from the python pickles: ``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch}``."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import check_integrity

from parti_exp.data.cached import CachedImageDataModule, DecodedSplit, SourceFiles, require_dataset_values
from parti_exp.data.decode import resize_images
from parti_exp.errors import BadDataError, MissingInputError

# torchvision's table of the official files and their md5 sums: [name, md5] per batch.
_FILES = {"train": CIFAR10.train_list, "val": CIFAR10.test_list}

# Everything a batch pickle may name besides dicts, lists, bytes and numbers: how numpy pickles an array (under
# numpy 1 and 2, protocols 2 to 5) and how Python 3's protocol 2 writes bytes. With data.verify=false a batch may
# come from anywhere, and unpickling anything else could run code.
_ARRAY_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain data and numpy arrays; refuses any other class or function."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(
                f"it holds a pickled {module}.{name}, which no CIFAR batch does; it was not unpickled, as that could "
                "run code"
            )
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR batch pickle -> uint8 ``N x 3 x 32 x 32`` images and int64 labels.

    The official files are Python 2 pickles; loaded with ``encoding="bytes"`` as the dataset's page says, their
    keys are ``b"data"`` and ``b"labels"``. Copies re-pickled under Python 3 may use ``str`` keys: both are read.
    Each row of ``data`` is 1024 red, then green, then blue values in row-major order: already C x H x W.
    """
    remedy = "delete it and set data.download=true, or replace it with a fresh copy"

    def field(batch: dict, key: str) -> object:
        return batch[key.encode()] if key.encode() in batch else batch[key]

    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
        data = np.asarray(field(batch, "data"), dtype=np.uint8)
        labels = np.asarray(field(batch, "labels"), dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise BadDataError(
            f"{path} is not a readable CIFAR batch ({type(error).__name__}: {error}); {remedy}"
        ) from error
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (len(data),):
        raise BadDataError(
            f"{path}: expected b'data' of shape N x 3072 and N b'labels', got {data.shape} and {labels.shape}; {remedy}"
        )
    if len(labels) and not 0 <= labels.min() <= labels.max() <= 9:
        raise BadDataError(f"{path}: labels must be classes 0..9, found {labels.min()}..{labels.max()}; {remedy}")
    return data.reshape(-1, 3, 32, 32), labels


class CIFAR10DataModule(CachedImageDataModule):
    """CIFAR-10: train = the five ``data_batch_*`` files (50k), val = ``test_batch`` (10k).

    With ``verify`` the batches must match the md5 sums torchvision lists for the official release (checked
    when the cache is built, i.e. when the files change); ``verify=false`` accepts modified copies.
    """

    name = "cifar10"
    val_is_official_test = True  # val = test_batch

    def __init__(
        self,
        root: str | Path,
        img_size: int = 32,
        channels: int = 3,
        num_classes: int = 10,
        batch_size: int = 64,
        num_workers: int = 0,
        hflip: bool = True,
        download: bool = False,
        verify: bool = True,
        cache_dir: str | Path | None = None,
    ) -> None:
        require_dataset_values("CIFAR-10", channels=(channels, 3), num_classes=(num_classes, 10))
        super().__init__(root, img_size, channels, num_classes, batch_size, num_workers, hflip, cache_dir)
        self.download = download
        self.verify = verify
        self.folder = self.root / CIFAR10.base_folder

    def _missing(self) -> list[str]:
        return [name for files in _FILES.values() for name, _ in files if not (self.folder / name).is_file()]

    def ensure_source(self) -> None:
        if self._missing() and self.download:
            CIFAR10(self.root, train=True, download=True)
        missing = self._missing()
        if missing:
            raise MissingInputError(
                f"CIFAR-10 not found: looked in {self.folder} for {', '.join(missing)}. Set data.download=true to "
                f"fetch it with torchvision, extract cifar-10-python.tar.gz into {self.root}, "
                f"or point paths.data_dir= at the directory that holds {CIFAR10.base_folder}/"
            )

    def source_files(self, split: str) -> SourceFiles:
        return SourceFiles(self.root, [self.folder / name for name, _ in _FILES[split]])

    def decode(self, split: str) -> DecodedSplit:
        if self.verify:
            for name, md5 in _FILES[split]:
                if not check_integrity(self.folder / name, md5):
                    raise BadDataError(
                        f"{self.folder / name} does not match the md5 of the official CIFAR-10 release. Replace it "
                        "(delete it and set data.download=true), or set data.verify=false if you changed it on purpose"
                    )
        batches = [read_batch(path) for path in self.source_files(split).files]
        images = np.concatenate([images for images, _ in batches])
        labels = np.concatenate([labels for _, labels in batches])
        images = resize_images(images, self.img_size, Image.Resampling.BICUBIC)
        return DecodedSplit(labels, [images])
