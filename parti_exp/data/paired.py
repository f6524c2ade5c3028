"""``data=paired``: real (input, target) pairs from disk, for ``model=pix2pix task=paired``.

Two layouts (``data.layout``):

- ``folders``: ``<path>/A/`` holds the inputs and ``<path>/B/`` their targets, matched by file name (the
  extension may differ: ``A/0001.jpg`` pairs with ``B/0001.png``). Every file needs its partner.
- ``side_by_side``: each image under ``<path>`` is an input and its target side by side, input on the left,
  twice as wide as high: the ``AB`` layout pix2pix's datasets ship in (facades, maps, edges2shoes: point ``path``
  at their ``train/`` folder and ``val_path`` at ``val/``).

Both images of a pair are resized (shorter side to ``img_size``, bicubic) and center-cropped alike, converted to
``channels``, and cached as one ``2C``-channel item (``parti_exp.data.image_pairs``), so a flip flips both. The
held-out split is ``val_path`` (the same layout) when given, else a seeded ``val_fraction`` of ``path``'s pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property, partial
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

from parti_exp.data.cached import CachedImageDataModule, DecodedSplit, SourceFiles
from parti_exp.data.decode import decode_image_files, default_decode_workers, pil_mode, resize_center_crop
from parti_exp.data.image_pairs import PairedImageDataset
from parti_exp.errors import MissingInputError
from parti_exp.runtime.validation import require

LAYOUTS = ("folders", "side_by_side")


def _images_in(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and has_file_allowed_extension(p.name, IMG_EXTENSIONS))


def half(image: Image.Image, side: int, size: int) -> Image.Image:
    """The left (``side`` 0) or right (1) half of a side-by-side pair, resized and center-cropped to ``size``."""
    width, height = image.size
    if width < 2:
        raise ValueError(f"is {width} x {height} px: a side-by-side pair needs two halves")
    middle = width // 2
    box = (0, 0, middle, height) if side == 0 else (middle, 0, 2 * middle, height)
    return resize_center_crop(image.crop(box), size)


class PairedDataModule(CachedImageDataModule):
    """Input images beside their targets; labels are all 0 (one class)."""

    aligned = True  # ServesImagePairs: each B is its A's target
    val_aligned = True

    def __init__(
        self,
        path: str | Path,
        root: str | Path,
        layout: str = "folders",
        val_path: str | Path | None = None,
        img_size: int = 64,
        channels: int = 3,
        num_classes: int = 1,
        val_fraction: float = 0.05,
        split_seed: int = 0,
        batch_size: int = 16,
        num_workers: int = 0,
        decode_workers: int | None = None,
        hflip: bool = False,
        cache_dir: str | Path | None = None,
    ) -> None:
        require(layout in LAYOUTS, "data.layout", f"must be one of {LAYOUTS}, got {layout!r}")
        require(num_classes == 1, "data.num_classes", f"of paired data is 1 (its labels are all 0), got {num_classes}")
        super().__init__(root, img_size, channels, num_classes, batch_size, num_workers, hflip, cache_dir)
        require(0.0 < val_fraction < 1.0, "data.val_fraction", f"must be in (0, 1), got {val_fraction}")
        self.path = Path(path).expanduser()
        self.val_path = None if val_path is None else Path(val_path).expanduser()
        self.layout = layout
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.decode_workers = default_decode_workers() if decode_workers is None else decode_workers
        self.name = "paired_" + "".join(c if c.isalnum() or c in "_." else "_" for c in self.path.resolve().name)

    def _pairs_in(self, folder: Path, key: str) -> list[tuple[Path, Path]]:
        """(input file, target file) for every pair under ``folder`` (the same file twice when side by side)."""
        if not folder.is_dir():
            raise MissingInputError(f"{key}={folder} is not a directory; {self._layout_hint()}")
        if self.layout == "side_by_side":
            return [(path, path) for path in _images_in(folder)]
        for side in ("A", "B"):
            if not (folder / side).is_dir():
                raise MissingInputError(f"{key}={folder} has no {side}/ folder; {self._layout_hint()}")
        inputs = {p.stem: p for p in _images_in(folder / "A")}
        targets = {p.stem: p for p in _images_in(folder / "B")}
        alone = sorted(set(inputs) ^ set(targets))
        if alone:
            listed = ", ".join(f"{'A' if s in inputs else 'B'}/{(inputs | targets)[s].name}" for s in alone[:5])
            raise MissingInputError(f"{key}={folder}: {len(alone)} images have no partner of the same name in the "
                                    f"other folder ({listed}{' …' if len(alone) > 5 else ''}); every A/ image needs "
                                    "its target in B/ under the same file name")
        return [(inputs[stem], targets[stem]) for stem in sorted(inputs)]

    def _layout_hint(self) -> str:
        if self.layout == "folders":
            return ("data.layout=folders wants <path>/A/ (inputs) and <path>/B/ (targets) with the same file names; "
                    "for side-by-side AB images set data.layout=side_by_side")
        return "data.layout=side_by_side wants a folder of images, each the input (left) beside its target (right)"

    @cached_property
    def _splits(self) -> dict[str, list[tuple[Path, Path]]]:
        pairs = self._pairs_in(self.path, "data.path")
        if self.val_path is not None:
            return {"train": pairs, "val": self._pairs_in(self.val_path, "data.val_path")}
        order = np.random.default_rng(self.split_seed).permutation(len(pairs))
        n_val = max(1, round(self.val_fraction * len(pairs)))
        return {"train": [pairs[i] for i in np.sort(order[n_val:])], "val": [pairs[i] for i in np.sort(order[:n_val])]}

    def ensure_source(self) -> None:
        splits = self._splits
        if len(splits["train"]) < 1 or len(splits["val"]) < 1:
            raise MissingInputError(f"data.path={self.path} holds {len(splits['train'])} training and "
                                    f"{len(splits['val'])} held-out pairs: need at least one of each")

    def source_files(self, split: str) -> SourceFiles:
        base = self.path if split == "train" or self.val_path is None else self.val_path
        files = [path for pair in self._splits[split] for path in dict.fromkeys(pair)]
        return SourceFiles(base, files)

    def cache_settings(self) -> dict[str, object]:
        return {**super().cache_settings(), "layout": self.layout}

    def stored_shape(self) -> tuple[int, int, int]:
        return (2 * self.channels, self.img_size, self.img_size)

    def decode(self, split: str) -> DecodedSplit:
        pairs = self._splits[split]
        if self.layout == "side_by_side":  # both files of a pair are the same image: its halves are the two sides
            prepare = [partial(half, side=side, size=self.img_size) for side in (0, 1)]
        else:
            prepare = [partial(resize_center_crop, size=self.img_size)] * 2
        # The same chunk size on both sides: chunk k of the inputs and chunk k of the targets hold the same pairs.
        inputs, targets = (
            decode_image_files([pair[side] for pair in pairs], pil_mode(self.channels), prepare[side],
                               self.decode_workers)
            for side in (0, 1)
        )
        return DecodedSplit(np.zeros(len(pairs), dtype=np.int64), _stacked(inputs, targets))

    def load_split(self, split: str) -> PairedImageDataset:
        stored = super().load_split(split)
        return PairedImageDataset(stored.images, stored.labels)


def _stacked(inputs: Iterator[np.ndarray], targets: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """Each chunk of inputs with the chunk of targets of the same files, stacked as channels."""
    for a, b in zip(inputs, targets):
        yield np.concatenate([a, b], axis=1)
