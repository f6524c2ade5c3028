"""MNIST from torchvision's on-disk layout: ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision.datasets import MNIST

from parti_exp.data.cached import CachedImageDataModule, DecodedSplit, SourceFiles, require_dataset_values
from parti_exp.data.decode import resize_images
from parti_exp.errors import BadDataError, MissingInputError

# idx magic number: two zero bytes, the element type (0x08 = unsigned byte), the number of dimensions.
_UBYTE = 0x08
_PREFIX = {"train": "train", "val": "t10k"}


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte idx file (plain or gzipped) as an array.

    torchvision's ``read_image_file`` opens only uncompressed files (the ``.gz`` files as distributed need
    extracting first) and fails a truncated file with a bare assertion; this reads both and says which file is bad.
    """
    remedy = "delete it and set data.download=true, or replace it with a fresh copy"
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as error:  # bad or truncated gzip stream
        raise BadDataError(f"cannot read MNIST file {path}: {error}; {remedy}") from error
    header = 4 + 4 * ndim
    if len(data) < header or data[:4] != bytes([0, 0, _UBYTE, ndim]):
        raise BadDataError(
            f"{path} is not an idx file of {ndim}-d unsigned bytes (its magic number is {data[:4].hex() or 'missing'}, "
            f"expected 000008{ndim:02x}); {remedy}"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise BadDataError(
            f"{path} is truncated or corrupt: its header promises {' x '.join(map(str, shape))} = {expected} bytes, "
            f"it holds {len(data) - header}; {remedy}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


class MNISTDataModule(CachedImageDataModule):
    """MNIST digits; train = the 60k ``train-*`` files, val = the 10k ``t10k-*`` files.

    The 28 px digits are resized (bilinear) rather than padded to ``img_size``: DCGAN-style nets want a power
    of two and were tuned on digits that fill the frame; padding would leave a 2 px empty border for the
    generator to learn.
    """

    name = "mnist"
    val_is_official_test = True  # val = the t10k files

    def __init__(
        self,
        root: str | Path,
        img_size: int = 32,
        channels: int = 1,
        num_classes: int = 10,
        batch_size: int = 64,
        num_workers: int = 0,
        hflip: bool = False,
        download: bool = False,
        cache_dir: str | Path | None = None,
    ) -> None:
        require_dataset_values("MNIST", channels=(channels, 1), num_classes=(num_classes, 10))
        super().__init__(root, img_size, channels, num_classes, batch_size, num_workers, hflip, cache_dir)
        self.download = download
        self.raw_folder = self.root / "MNIST" / "raw"

    def _expected(self, split: str) -> list[str]:
        prefix = _PREFIX[split]
        return [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]

    def _find(self, name: str) -> Path | None:
        """The uncompressed file if present (torchvision extracts it next to the .gz), else the .gz."""
        for path in (self.raw_folder / name, self.raw_folder / f"{name}.gz"):
            if path.is_file():
                return path
        return None

    def _missing(self) -> list[str]:
        return [name for split in _PREFIX for name in self._expected(split) if self._find(name) is None]

    def ensure_source(self) -> None:
        if self._missing() and self.download:
            MNIST(self.root, train=True, download=True)
        missing = self._missing()
        if missing:
            raise MissingInputError(
                f"MNIST not found: looked in {self.raw_folder} for {', '.join(missing)} (each may also be .gz). "
                f"Set data.download=true to fetch them with torchvision, place the four idx files there, "
                f"or point paths.data_dir= at the directory that holds MNIST/raw/"
            )

    def source_files(self, split: str) -> SourceFiles:
        return SourceFiles(self.root, [self._find(name) for name in self._expected(split)])

    def decode(self, split: str) -> DecodedSplit:
        images_path, labels_path = self.source_files(split).files
        images = read_idx(images_path, ndim=3)
        labels = read_idx(labels_path, ndim=1)
        if len(images) != len(labels) or labels.max(initial=0) > 9:
            raise BadDataError(
                f"{labels_path} does not match {images_path}: {len(labels)} labels (max {labels.max(initial=0)}) "
                f"for {len(images)} images; replace both files with a matching pair"
            )
        images = resize_images(images[:, None], self.img_size, Image.Resampling.BILINEAR)
        return DecodedSplit(labels.astype(np.int64), [images])
