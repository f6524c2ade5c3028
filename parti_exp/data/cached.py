"""An ImageDataModule over files on disk, decoded once into the uint8 cache and memory-mapped after that."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from parti_exp.data.base import ImageDataModule, UInt8ImageDataset
from parti_exp.data.uint8_cache import UInt8Cache, entry_name, fingerprint
from parti_exp.errors import ConfigError, MissingInputError

SPLITS = ("train", "val")


@dataclass
class DecodedSplit:
    """A split as a subclass decodes it: all labels, and the images in order as uint8 ``n x C x H x W`` chunks.

    ``skipped`` fills, while the chunks are read, with the positions of images left out (unreadable files with
    ``data.skip_bad=true``); their labels are dropped."""

    labels: np.ndarray
    image_chunks: Iterable[np.ndarray]
    skipped: list[int] = field(default_factory=list)


@dataclass
class SourceFiles:
    """The files a split is decoded from; their names, sizes and mtimes key the cache entry."""

    base: Path
    files: list[Path]


def require_dataset_values(dataset: str, **given_and_expected: tuple[object, object]) -> None:
    """Reject config keys that describe a fixed dataset (``channels``, ``num_classes``) but were changed."""
    wrong = {key: pair for key, pair in given_and_expected.items() if pair[0] != pair[1]}
    if wrong:
        given = ", ".join(f"data.{key}={pair[0]}" for key, pair in wrong.items())
        expected = ", ".join(f"{key}={pair[1]}" for key, pair in wrong.items())
        raise ConfigError(
            f"{dataset} has {expected}; got {given} (these keys describe the dataset, they do not change it)"
        )


class CachedImageDataModule(ImageDataModule):
    """Subclasses say where the files are (``ensure_source``, ``source_files``) and how to decode a split
    (``decode``); this class decides when decoding happens.

    ``prepare_data`` builds the cache: Lightning runs it before ``setup`` in one process per node, so DDP
    ranks do not all decode the same files at once. ``setup`` (every rank) then memory-maps the entries. A
    run that skips ``prepare_data`` still works: ``load_split`` builds a missing entry. Processes that want the same
    missing entry at once (nodes on one file system, parallel jobs) build it once: one builds under the entry's
    lock, the others wait and read it.
    """

    download = False  # datasets torchvision can fetch take data.download=true

    def __init__(
        self,
        root: str | Path,
        img_size: int,
        channels: int,
        num_classes: int,
        batch_size: int,
        num_workers: int,
        hflip: bool,
        cache_dir: str | Path | None,
    ) -> None:
        super().__init__(
            img_size=img_size,
            channels=channels,
            num_classes=num_classes,
            batch_size=batch_size,
            num_workers=num_workers,
            hflip=hflip,
        )
        self.root = Path(root).expanduser()
        self.cache = UInt8Cache(cache_dir if cache_dir is not None else self.root / ".cache")

    def check_inputs(self) -> None:
        # With download=true the files are fetched by prepare_data, which Lightning runs in one process per node;
        # a check here would download in every DDP process.
        if not self.download:
            self.ensure_source()

    def ensure_source(self) -> None:
        """Download the files if allowed and missing; raise FileNotFoundError naming what is missing and the fix."""
        raise NotImplementedError(f"{type(self).__name__} must implement ensure_source")

    def source_files(self, split: str) -> SourceFiles:
        raise NotImplementedError(f"{type(self).__name__} must implement source_files")

    def cache_settings(self) -> dict[str, object]:
        """Every setting that changes the decoded pixels or labels (ints also appear in the entry's name)."""
        return {"img_size": self.img_size, "channels": self.channels}

    def stored_shape(self) -> tuple[int, int, int]:
        """The shape of one cached item: ``channels x img_size x img_size`` (an image pair stores both as one)."""
        return (self.channels, self.img_size, self.img_size)

    def decode(self, split: str) -> DecodedSplit:
        raise NotImplementedError(f"{type(self).__name__} must implement decode")

    def select_labels(self, labels: np.ndarray) -> np.ndarray:
        """Labels as served, from the labels as cached (a subclass may cache more than it serves)."""
        return labels

    def prepare_data(self) -> None:
        for split in SPLITS:
            self.load_split(split)

    def cache_entry(self, split: str) -> str:
        """The name of ``split``'s cache entry under the current settings and source files."""
        self.ensure_source()
        sources = self.source_files(split)
        try:
            source_fingerprint = fingerprint(sources.base, sources.files)
        except FileNotFoundError as error:
            raise MissingInputError(
                f"{error.filename} is missing: the {self.name} {split} split lists it. Restore the file, "
                "or use list files that match the images you have"
            ) from error
        return entry_name(self.name, split, self.cache_settings(), source_fingerprint)

    def load_split(self, split: str) -> UInt8ImageDataset:
        name = self.cache_entry(split)
        cached = self.cache.load(name)
        if cached is None:
            with self.cache.building(name):
                # Another process may have built it while this one waited for the lock.
                cached = self.cache.load(name)
                if cached is None:
                    decoded = self.decode(split)
                    cached = self.cache.build(name, decoded.labels, self.stored_shape(), decoded.image_chunks,
                                              decoded.skipped)
        images, labels = cached
        return UInt8ImageDataset(images, self.select_labels(labels))
