"""Any folder of images, optionally one subfolder per class (torchvision ImageFolder's layout)."""

from __future__ import annotations

import os
import re
from functools import cached_property, partial
from pathlib import Path

import numpy as np
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension, make_dataset

from parti_exp.data.cached import CachedImageDataModule, DecodedSplit, SourceFiles
from parti_exp.data.decode import decode_image_files, default_decode_workers, pil_mode, resize_center_crop
from parti_exp.errors import ConfigError, MissingInputError
from parti_exp.runtime.validation import require


def _all_images(folder: Path) -> list[Path]:
    """Image files anywhere under ``folder``, sorted; hidden folders (.cache, .ipynb_checkpoints) are skipped."""
    found = []
    for directory, subdirectories, files in os.walk(folder, followlinks=True):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        found += [Path(directory, name) for name in files if has_file_allowed_extension(name, IMG_EXTENSIONS)]
    return sorted(found)


class FolderDataModule(CachedImageDataModule):
    """Images under ``path``, resized (shorter side to ``img_size``), center-cropped, converted to ``channels``.

    With ``class_subfolders`` and subfolders present, each (non-hidden) subfolder is a class and labels are
    indices in sorted folder order, as in ImageFolder; images directly in ``path`` are then ignored, as there.
    Otherwise every image anywhere below ``path`` is used with label 0 (set ``class_subfolders=false`` for
    layouts like FFHQ's, whose numbered subfolders are not classes).

    The held-out split is a seeded permutation of the sorted file list, so it is the same on every machine and
    every run, whatever the training seed.
    """

    def __init__(
        self,
        path: str | Path,
        root: str | Path,
        img_size: int = 64,
        channels: int = 3,
        num_classes: int = 1,
        class_subfolders: bool = True,
        val_fraction: float = 0.05,
        split_seed: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        decode_workers: int | None = None,
        hflip: bool = False,
        cache_dir: str | Path | None = None,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(root, img_size, channels, num_classes, batch_size, num_workers, hflip, cache_dir)
        require(0.0 < val_fraction < 1.0, "data.val_fraction", f"must be in (0, 1), got {val_fraction}")
        self.path = Path(path).expanduser()
        self.class_subfolders = class_subfolders
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.decode_workers = default_decode_workers() if decode_workers is None else decode_workers
        self.skip_bad = skip_bad
        # The folder's name in the cache entries' names tells a person whose entries they are.
        self.name = "folder_" + re.sub(r"[^A-Za-z0-9_.]+", "_", self.path.resolve().name)

    @cached_property
    def _listing(self) -> tuple[list[str], list[Path], np.ndarray]:
        """(class names, image paths, labels) for the whole folder."""
        classes = []
        if self.class_subfolders:
            classes = sorted(e.name for e in os.scandir(self.path) if e.is_dir() and not e.name.startswith("."))
        if not classes:
            paths = _all_images(self.path)
            return [], paths, np.zeros(len(paths), dtype=np.int64)
        try:
            samples = make_dataset(self.path, {name: i for i, name in enumerate(classes)}, extensions=IMG_EXTENSIONS)
        except FileNotFoundError as error:
            raise MissingInputError(
                f"{self.path}: every subfolder is a class and must hold images. {error}. Remove the empty "
                "subfolders, or set data.class_subfolders=false to use all images as one class"
            ) from error
        return classes, [Path(p) for p, _ in samples], np.asarray([label for _, label in samples], dtype=np.int64)

    @cached_property
    def _split_indices(self) -> dict[str, np.ndarray]:
        _, paths, _ = self._listing
        order = np.random.default_rng(self.split_seed).permutation(len(paths))
        n_val = max(1, round(self.val_fraction * len(paths)))
        # Sorted so that each split reads its files in folder order.
        return {"train": np.sort(order[n_val:]), "val": np.sort(order[:n_val])}

    def ensure_source(self) -> None:
        if not self.path.is_dir():
            raise MissingInputError(
                f"data.path={self.path} is not a directory; set data.path=/path/to/images "
                "(a folder of images, or one subfolder of images per class)"
            )
        classes, paths, _ = self._listing
        if len(paths) < 2:
            raise MissingInputError(
                f"found {len(paths)} images in {self.path} (searched recursively); need at least 2 for a train and "
                f"a val split. Accepted extensions: {', '.join(IMG_EXTENSIONS)}"
            )
        found = max(1, len(classes))
        if found != self.num_classes:
            listed = f"classes ({', '.join(classes)})" if classes else "class (no class subfolders)"
            hint = " (or data.class_subfolders=false to use all images as one class)" if classes else ""
            raise ConfigError(
                f"{self.path} has {found} {listed}, but data.num_classes={self.num_classes}; "
                f"set data.num_classes={found}{hint}"
            )

    def source_files(self, split: str) -> SourceFiles:
        _, paths, _ = self._listing
        return SourceFiles(self.path, [paths[i] for i in self._split_indices[split]])

    def cache_settings(self) -> dict[str, object]:
        classes, _, _ = self._listing
        return {**super().cache_settings(), "classes": classes, "skip_bad": self.skip_bad}

    def decode(self, split: str) -> DecodedSplit:
        _, _, labels = self._listing
        skipped: list[int] = []
        chunks = decode_image_files(
            self.source_files(split).files,
            pil_mode(self.channels),
            partial(resize_center_crop, size=self.img_size),
            self.decode_workers,
            skipped if self.skip_bad else None,
        )
        return DecodedSplit(labels[self._split_indices[split]], chunks, skipped)
