"""``data=unpaired``: two unpaired image folders in CycleGAN's own layout, for ``model=cyclegan``.

``<path>/trainA/`` and ``<path>/trainB/`` are the training images of domains A and B (any number each, no relation
between their files), ``<path>/testA/`` and ``<path>/testB/`` the held-out ones (the validation split here). Every
image is resized (shorter side to ``img_size``, bicubic), center-cropped and converted to ``channels``; each folder
is decoded once into the uint8 cache. Items pair an A image with a B image as ``UnpairedImageDataset`` describes.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

from parti_exp.data.cached import CachedImageDataModule, DecodedSplit, SourceFiles
from parti_exp.data.decode import decode_image_files, default_decode_workers, pil_mode, resize_center_crop
from parti_exp.data.image_pairs import UnpairedImageDataset
from parti_exp.errors import MissingInputError
from parti_exp.runtime.validation import require

# The folders of each split, domain A's first.
FOLDERS = {"train": ("trainA", "trainB"), "val": ("testA", "testB")}


class UnpairedDataModule(CachedImageDataModule):
    """Domains A and B from CycleGAN's folders; labels are all 0 (one class)."""

    aligned = False  # ServesImagePairs: A and B are drawn independently
    val_aligned = False

    def __init__(
        self,
        path: str | Path,
        root: str | Path,
        img_size: int = 64,
        channels: int = 3,
        num_classes: int = 1,
        split_seed: int = 0,
        batch_size: int = 1,
        num_workers: int = 0,
        decode_workers: int | None = None,
        hflip: bool = False,
        cache_dir: str | Path | None = None,
    ) -> None:
        require(num_classes == 1, "data.num_classes",
                f"of unpaired data is 1 (its labels are all 0), got {num_classes}")
        super().__init__(root, img_size, channels, num_classes, batch_size, num_workers, hflip, cache_dir)
        self.path = Path(path).expanduser()
        self.split_seed = split_seed
        self.decode_workers = default_decode_workers() if decode_workers is None else decode_workers
        self.name = "unpaired_" + "".join(c if c.isalnum() or c in "_." else "_" for c in self.path.resolve().name)

    def _files(self, folder: str) -> list[Path]:
        directory = self.path / folder
        if not directory.is_dir():
            return []
        return sorted(p for p in directory.iterdir() if p.is_file() and has_file_allowed_extension(p.name,
                                                                                                  IMG_EXTENSIONS))

    def ensure_source(self) -> None:
        empty = [folder for pair in FOLDERS.values() for folder in pair if not self._files(folder)]
        if empty:
            raise MissingInputError(
                f"data.path={self.path} needs CycleGAN's layout, trainA/ trainB/ testA/ testB/ each holding images "
                f"({', '.join(IMG_EXTENSIONS)}); missing or empty: {', '.join(f'{f}/' for f in empty)}"
            )

    def source_files(self, split: str) -> SourceFiles:
        # ``split`` here is one of the four folders: each is its own cache entry.
        return SourceFiles(self.path, self._files(split))

    def decode(self, split: str) -> DecodedSplit:
        files = self._files(split)
        chunks = decode_image_files(files, pil_mode(self.channels), partial(resize_center_crop, size=self.img_size),
                                    self.decode_workers)
        return DecodedSplit(np.zeros(len(files), dtype=np.int64), chunks)

    def prepare_data(self) -> None:
        for split in FOLDERS:
            self.load_split(split)

    def load_split(self, split: str) -> UnpairedImageDataset:
        folder_a, folder_b = FOLDERS[split]
        a, b = super().load_split(folder_a), super().load_split(folder_b)
        return UnpairedImageDataset(a.images, b.images, np.asarray(b.labels), seed=self.split_seed)
