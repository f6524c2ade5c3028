"""CelebA (aligned and cropped faces) in torchvision's layout: ``<root>/celeba/img_align_celeba/*.jpg``,
``list_eval_partition.txt`` and ``list_attr_celeba.txt``."""

from __future__ import annotations

from functools import cached_property, partial
from pathlib import Path

import numpy as np
from torchvision.datasets import CelebA
from torchvision.datasets.utils import check_integrity

from parti_exp.data.cached import CachedImageDataModule, DecodedSplit, SourceFiles, require_dataset_values
from parti_exp.data.decode import center_crop_resize, decode_image_files, default_decode_workers, pil_mode
from parti_exp.errors import BadDataError, ConfigError, MissingInputError
from parti_exp.runtime.validation import is_int_at_least, require

PARTITION_FILE = "list_eval_partition.txt"
ATTR_FILE = "list_attr_celeba.txt"
IMAGE_FOLDER = "img_align_celeba"
# list_eval_partition.txt numbers the splits 0 (train), 1 (valid), 2 (test); the test split is left unused.
_PARTITION = {"train": 0, "val": 1}
# torchvision's md5 table of the official files; only the list files we read are checked.
_MD5 = {filename: md5 for _, md5, filename in CelebA.file_list}
_REMEDY = "replace it with the file from the official CelebA release"
# The order of the columns of list_attr_celeba.txt, which is the order of the CelebA label vector.
def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise BadDataError(f"cannot read {path}: {error}; {_REMEDY}") from error


def read_partition(path: Path) -> tuple[list[str], np.ndarray]:
    """``list_eval_partition.txt`` (``000001.jpg 0`` per line) -> image names and their split numbers."""
    names, splits = [], []
    for number, line in enumerate(_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise BadDataError(f"{path}, line {number}: expected '<image name> <0|1|2>', got {line!r}; {_REMEDY}")
        names.append(fields[0])
        splits.append(int(fields[1]))
    return names, np.asarray(splits, dtype=np.int64)


def read_attribute_names(path: Path) -> list[str]:
    """The 40 attribute names on the second line of ``list_attr_celeba.txt`` (the first is the image count)."""
    try:
        with open(path) as f:
            header = [f.readline(), f.readline()]
    except (OSError, UnicodeDecodeError) as error:
        raise BadDataError(f"cannot read {path}: {error}; {_REMEDY}") from error
    if not header[0].strip().isdigit() or not header[1].split():
        raise BadDataError(
            f"{path}: expected the number of images on line 1 and the attribute names on line 2; {_REMEDY}"
        )
    return header[1].split()


def read_attributes(path: Path) -> tuple[list[str], np.ndarray]:
    """``list_attr_celeba.txt`` -> image names and an ``N x 40`` int64 array, 1 where the attribute is present.

    The file stores -1/1; 0/1 is what torchvision returns and what a BCE loss expects.
    """
    num_attributes = len(read_attribute_names(path))
    names, rows = [], []
    for number, line in enumerate(_lines(path)[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        values = fields[1:]
        if len(values) != num_attributes or not all(value in ("1", "-1") for value in values):
            raise BadDataError(
                f"{path}, line {number}: expected an image name and {num_attributes} values of -1 or 1, "
                f"got {line!r}; {_REMEDY}"
            )
        names.append(fields[0])
        # One byte per attribute while reading: 202,599 rows of Python ints would take ~400 MB.
        rows.append(bytes(value == "1" for value in values))
    present = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), num_attributes)
    return names, present.astype(np.int64)


class CelebADataModule(CachedImageDataModule):
    """CelebA faces: center ``crop`` (108 keeps the face, 140 a bit of hair and background), resized to ``img_size``.

    Labels are the 40 binary attributes (``label_attr=None``: an ``N x 40`` multi-label array, num_classes 40), or
    one of them as a 0/1 class (``label_attr="Smiling"``: num_classes 2). The cache holds all 40, so switching
    ``label_attr`` reuses the decoded images. Train = partition 0 (162,770 images), val = partition 1 (19,867).
    """

    name = "celeba"

    def __init__(
        self,
        root: str | Path,
        img_size: int = 64,
        crop: int = 108,
        channels: int = 3,
        num_classes: int = 40,
        label_attr: str | None = None,
        batch_size: int = 64,
        num_workers: int = 2,
        decode_workers: int | None = None,
        hflip: bool = True,
        download: bool = False,
        verify: bool = True,
        cache_dir: str | Path | None = None,
        skip_bad: bool = False,
    ) -> None:
        if label_attr is None:
            require_dataset_values(
                "CelebA with data.label_attr=null (all 40 attributes)", num_classes=(num_classes, 40)
            )
        else:
            require_dataset_values(f"CelebA with data.label_attr={label_attr}", num_classes=(num_classes, 2))
        super().__init__(root, img_size, channels, num_classes, batch_size, num_workers, hflip, cache_dir)
        require(is_int_at_least(crop, 1), "data.crop",
                f"must be a positive integer (the side of the center square), got {crop!r}")
        self.crop = crop
        self.label_attr = label_attr
        self.decode_workers = default_decode_workers() if decode_workers is None else decode_workers
        self.skip_bad = skip_bad
        self.download = download
        self.verify = verify
        self.folder = self.root / CelebA.base_folder

    def _missing(self) -> list[str]:
        missing = [name for name in (PARTITION_FILE, ATTR_FILE) if not (self.folder / name).is_file()]
        if not (self.folder / IMAGE_FOLDER).is_dir():
            missing.insert(0, f"{IMAGE_FOLDER}/*.jpg")
        return missing

    def ensure_source(self) -> None:
        if self._missing() and self.download:
            CelebA(self.root, split="all", download=True)
        missing = self._missing()
        if missing:
            raise MissingInputError(
                f"CelebA not found: looked in {self.folder} for {', '.join(missing)}. Set data.download=true to fetch "
                f"it with torchvision (needs the gdown package and Google Drive quota), place the files there "
                f"(img_align_celeba.zip extracted, and the list files from the CelebA page), "
                f"or point paths.data_dir= at the directory that holds celeba/"
            )
        if self.label_attr is not None:
            names = read_attribute_names(self.folder / ATTR_FILE)
            if self.label_attr not in names:
                raise ConfigError(f"data.label_attr={self.label_attr} is not a CelebA attribute; choose one of {names}")

    @cached_property
    def _partition(self) -> tuple[list[str], np.ndarray]:
        return read_partition(self.folder / PARTITION_FILE)

    def _split_names(self, split: str) -> list[str]:
        names, splits = self._partition
        return [name for name, s in zip(names, splits) if s == _PARTITION[split]]

    def source_files(self, split: str) -> SourceFiles:
        images = [self.folder / IMAGE_FOLDER / name for name in self._split_names(split)]
        return SourceFiles(self.root, [self.folder / PARTITION_FILE, self.folder / ATTR_FILE, *images])

    def cache_settings(self) -> dict[str, object]:
        return {**super().cache_settings(), "crop": self.crop, "skip_bad": self.skip_bad}

    def decode(self, split: str) -> DecodedSplit:
        if self.verify:
            for name in (PARTITION_FILE, ATTR_FILE):
                if not check_integrity(self.folder / name, _MD5[name]):
                    raise BadDataError(
                        f"{self.folder / name} does not match the md5 of the official CelebA release; {_REMEDY}, "
                        "or set data.verify=false if you edited it on purpose"
                    )
        names = self._split_names(split)
        attr_names, attributes = read_attributes(self.folder / ATTR_FILE)
        row = {name: i for i, name in enumerate(attr_names)}
        unlabeled = [name for name in names if name not in row]
        if unlabeled:
            raise BadDataError(
                f"{self.folder / ATTR_FILE} has no row for {len(unlabeled)} images of {PARTITION_FILE} "
                f"(first: {unlabeled[0]}); use list files from the same release"
            )
        labels = attributes[[row[name] for name in names]]
        skipped: list[int] = []
        chunks = decode_image_files(
            [self.folder / IMAGE_FOLDER / name for name in names],
            pil_mode(self.channels),
            partial(center_crop_resize, crop=self.crop, size=self.img_size),
            self.decode_workers,
            skipped if self.skip_bad else None,
        )
        return DecodedSplit(labels, chunks, skipped)

    def select_labels(self, labels: np.ndarray) -> np.ndarray:
        if self.label_attr is None:
            return labels
        return np.ascontiguousarray(labels[:, read_attribute_names(self.folder / ATTR_FILE).index(self.label_attr)])
