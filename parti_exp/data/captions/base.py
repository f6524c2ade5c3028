"""The shared shape of datasets whose images come with their own captions (a captioned folder, MS-COCO).

A subclass lists each split as ``CaptionedImage``s (``listing``) and names the files the captions are read from
(``caption_files``); this class decodes the images into the uint8 cache, stores the captions beside the cache
entry (``<entry>.captions.json``, so a cached run reads neither the images nor the annotation files' captions
again), and serves the images with caption ids as labels: train images are ids ``0 .. n_train - 1``, validation
images follow. ``caption_source()`` maps the ids back to their captions.

Captions are cleaned as they are read: control characters become spaces and runs of whitespace one space. Bad
input is refused before anything is decoded, naming the file and row, or skipped and counted with
``skip_bad=true``; so is an image that cannot be decoded, found while the cache is built (with ``skip_bad=true`` its
captions are left out with it).
"""

from __future__ import annotations

import json
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from parti_exp.data.base import UInt8ImageDataset
from parti_exp.data.cached import SPLITS, CachedImageDataModule, DecodedSplit, SourceFiles, require_dataset_values
from parti_exp.data.captions.sources import CaptionSource, ImageCaptions
from parti_exp.data.decode import decode_image_files, default_decode_workers, pil_mode, resize_center_crop
from parti_exp.errors import BadDataError, MissingInputError

log = logging.getLogger(__name__)

PROMPT_IMAGES = 16  # validation images whose first captions are the fixed prompts of the epoch-end grids


@dataclass
class CaptionedImage:
    path: Path
    captions: list[str]


class BadInput(ValueError):
    """A listing entry that cannot be used: ``where`` names the file (and row), ``problem`` what is wrong."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def clean_caption(text: str) -> str:
    """Control characters (newlines, tabs, NUL, ...) as spaces, whitespace runs as one space, no outer spaces."""
    spaced = "".join(" " if unicodedata.category(character) == "Cc" else character for character in text)
    return re.sub(r"\s+", " ", spaced).strip()


class BadInputLog:
    """Collects the bad entries of a listing: the first one is raised unless ``skip_bad``, then they are counted."""

    def __init__(self, skip_bad: bool, remedy: str) -> None:
        self.skip_bad = skip_bad
        self.remedy = remedy
        self.skipped: list[BadInput] = []

    def add(self, bad: BadInput) -> None:
        if not self.skip_bad:
            raise BadDataError(f"{bad}. {self.remedy}, or set data.skip_bad=true to skip such entries") from None
        self.skipped.append(bad)

    def report(self, dataset: str, split: str) -> None:
        if self.skipped:
            log.warning("%s %s split: skipped %d bad entries (data.skip_bad=true), the first: %s", dataset, split,
                        len(self.skipped), self.skipped[0])


def checked_captions(texts: list[str], where: str) -> list[str]:
    """The cleaned captions of one image; an image needs at least one, and none may be empty."""
    captions = [clean_caption(text) for text in texts]
    if not captions:
        raise BadInput(where, "the image has no caption")
    if not all(captions):
        raise BadInput(where, "a caption is empty")
    return captions


class CaptionedDataModule(CachedImageDataModule):
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
        decode_workers: int | None,
        skip_bad: bool,
    ) -> None:
        # One "class": the labels are caption ids, not classes (a conditional GAN has nothing to condition on).
        require_dataset_values("captioned images", num_classes=(num_classes, 1))
        super().__init__(root, img_size, channels, 1, batch_size, num_workers, hflip, cache_dir)
        self.decode_workers = default_decode_workers() if decode_workers is None else decode_workers
        self.skip_bad = skip_bad
        self._captions: dict[str, list[list[str]]] = {}
        # Listing a split reads its annotation files and checks every entry, and naming its cache entry stats every
        # file: both once per split.
        self._listings: dict[str, list[CaptionedImage]] = {}
        self._entries: dict[str, str] = {}

    def read_listing(self, split: str, bad: BadInputLog) -> list[CaptionedImage]:
        """The split's images and their cleaned captions; each bad entry goes to ``bad.add``."""
        raise NotImplementedError(f"{type(self).__name__} must implement read_listing")

    def listing(self, split: str) -> list[CaptionedImage]:
        if split not in self._listings:
            bad = BadInputLog(self.skip_bad, "Fix or remove the entry")
            entries = self.read_listing(split, bad)
            bad.report(self.name, split)
            if not entries:
                raise MissingInputError(f"{self.name}: the {split} split has no usable captioned image")
            self._listings[split] = entries
        return self._listings[split]

    def cache_entry(self, split: str) -> str:
        if split not in self._entries:
            self._entries[split] = super().cache_entry(split)
        return self._entries[split]

    def caption_files(self, split: str) -> list[Path]:
        """The files the split's captions are read from: their sizes and mtimes key the cache entry too."""
        raise NotImplementedError(f"{type(self).__name__} must implement caption_files")

    def source_base(self) -> Path:
        raise NotImplementedError(f"{type(self).__name__} must implement source_base")

    def source_files(self, split: str) -> SourceFiles:
        images = [entry.path for entry in self.listing(split)]
        return SourceFiles(self.source_base(), images + self.caption_files(split))

    def cache_settings(self) -> dict[str, object]:
        # An entry built while skipping holds fewer images than its listing: only such a run may read it. Named only
        # when on, so that entries built before the setting existed keep their names.
        return {**super().cache_settings(), **({"skip_bad": True} if self.skip_bad else {})}

    def decode(self, split: str) -> DecodedSplit:
        # Cached with each image's position in the listing as its label; ``load_split`` turns those into the
        # caption ids, so an undecodable image skipped here takes its captions with it.
        entries = self.listing(split)
        skipped: list[int] = []
        chunks = decode_image_files(
            [entry.path for entry in entries],
            pil_mode(self.channels),
            partial(resize_center_crop, size=self.img_size),
            self.decode_workers,
            skipped if self.skip_bad else None,
        )
        return DecodedSplit(np.arange(len(entries), dtype=np.int64), chunks, skipped)

    def _captions_path(self, split: str) -> Path:
        return self.cache.directory / f"{self.cache_entry(split)}.captions.json"

    def load_split(self, split: str) -> UInt8ImageDataset:
        dataset = super().load_split(split)
        path = self._captions_path(split)
        if path.is_file():
            self._captions[split] = json.loads(path.read_text(encoding="utf-8"))
        else:
            # The cached labels are listing positions: those of the images that were decoded.
            listing = self.listing(split)
            self._captions[split] = [listing[i].captions for i in np.asarray(dataset.labels).tolist()]
            # Renamed into place: a process reading the cache never sees half a file.
            temp = path.with_name(f".{path.name}.{os.getpid()}")
            temp.write_text(json.dumps(self._captions[split], ensure_ascii=False), encoding="utf-8")
            os.replace(temp, path)
        if len(self._captions[split]) != len(dataset):
            raise ValueError(f"{path} lists captions of {len(self._captions[split])} images, the cache entry holds "
                             f"{len(dataset)}: delete both and run again to rebuild them")
        # Caption ids: the image's place in the split (its captions' place in the list), whatever was skipped.
        return UInt8ImageDataset(dataset.images, np.arange(len(dataset), dtype=np.int64))

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        super().setup(stage)
        # Validation images' caption ids follow the training images'.
        self.val_set = UInt8ImageDataset(self.val_set.images, self.val_set.labels + len(self.train_set))

    def caption_source(self) -> CaptionSource:
        self.setup()
        captions = [*self._captions["train"], *self._captions["val"]]
        num_train = len(self._captions["train"])
        prompt_ids = list(range(num_train, min(len(captions), num_train + PROMPT_IMAGES)))
        return ImageCaptions(captions, num_train, prompt_ids)


def seeded_split(entries: list[CaptionedImage], split: str, val_fraction: float, seed: int) -> list[CaptionedImage]:
    """``split``'s part of ``entries`` (in their order) under a seeded permutation: the same on every machine."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    order = np.random.default_rng(seed).permutation(len(entries))
    n_val = max(1, round(val_fraction * len(entries)))
    chosen = np.sort(order[:n_val] if split == "val" else order[n_val:])
    return [entries[i] for i in chosen]
