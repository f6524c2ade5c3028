"""Digit scenes: a compositional text-to-image benchmark built from the embedded digits, offline and CPU-sized.

Each image is a canvas of 2 x 2 cells; each cell is empty (black) or holds one of scikit-learn's handwritten digits
at the cell's size. A scene shows one digit, several copies of one digit, or two different digits side by side or
one above the other, and comes with every true caption of that content in several phrasings (``scene_captions``).
Some combinations (``data.held_out_pairs``, ``data.held_out_counts``) never appear in training; the validation
split holds both kinds, flagged, so a model is measured on content it has to compose rather than recall.

The digits keep their own fixed train/val split (``DigitsDataModule``): training scenes are made of training digits
only and validation scenes of validation digits only, so the digit classifier that reads generated scenes, trained
on the training digits, is held out from every validation scene. Scenes are drawn from ``scene_seed`` alone: the
same config gives the same canvases and captions on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, zip_longest

import numpy as np

from parti_exp.data.base import ImageDataModule, UInt8ImageDataset
from parti_exp.data.captions.scene_captions import scene_captions
from parti_exp.data.captions.scene_spec import CATEGORIES, EMPTY, HeldOutCombinations, ScenePrompt, SceneSpec, all_specs
from parti_exp.data.captions.sources import ImageCaptions
from parti_exp.data.digits import DigitsDataModule
from parti_exp.runtime.validation import is_int_at_least, require

# The second word of each split's random stream, after the scene seed: the splits draw independently.
_SPLIT_STREAMS = {"train": 0, "val": 1}


@dataclass
class SceneSplit:
    """What each canvas of a split holds, row for row with its images."""

    specs: list[SceneSpec]
    cells: np.ndarray  # (N, 4) int64: each cell's digit in reading order, EMPTY where empty
    sources: np.ndarray  # (N, 4) int64: each cell's image in the digits' split of the same name, -1 where empty
    held_out: np.ndarray  # (N,) bool: content held out of training (never true in the train split)


class DigitScenesDataModule(ImageDataModule):
    """``num_train`` and ``num_val`` scenes of ``img_size`` px (cells of ``img_size / 2``); labels are caption ids
    (train ids first), and ``caption_source()`` holds each scene's captions."""

    name = "digit_scenes"

    def __init__(
        self,
        img_size: int = 32,
        channels: int = 1,
        num_classes: int = 0,
        batch_size: int = 64,
        num_train: int = 20000,
        num_val: int = 1000,
        scene_seed: int = 0,
        held_out_pairs: Sequence[Sequence[int]] = ((3, 8),),
        held_out_counts: Sequence[Sequence[int]] = ((3, 7),),
        val_fraction: float = 0.1,
        split_seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        require(channels == 1 and num_classes == 0, "digit scenes",
                f"are grayscale and their labels are caption ids, not classes; got data.channels={channels}, "
                f"data.num_classes={num_classes} (these keys describe the dataset, they do not change it)")
        # Cells of at least 8 px: the digits' native size, and the smallest input the digit classifier reads.
        require(is_int_at_least(img_size, 16) and img_size % 2 == 0, "data.img_size",
                f"must be an even integer >= 16 (two cells of >= 8 px), got {img_size!r}")
        # Never flipped (hflip stays off): a mirrored scene would contradict its "left of" / "right of" captions.
        super().__init__(img_size=img_size, channels=1, num_classes=0, batch_size=batch_size, num_workers=num_workers)
        for key, value in (("num_train", num_train), ("num_val", num_val)):
            require(is_int_at_least(value, 1), f"data.{key}", f"must be a positive integer, got {value!r}")
        self.num_train = num_train
        self.num_val = num_val
        self.scene_seed = scene_seed
        self.held_out = HeldOutCombinations.from_config(held_out_pairs, held_out_counts)
        for category in CATEGORIES:
            shown = not all(self.held_out.contains(spec) for spec in all_specs(category))
            require(shown, "data.held_out_pairs / held_out_counts",
                    f"hold out every {category} scene: training would never show one")
        # The source digits at the cell size; batch_size=1 because only its splits are used, never its loaders.
        self.digits = DigitsDataModule(img_size=img_size // 2, batch_size=1, val_fraction=val_fraction,
                                       split_seed=split_seed)
        self.scenes: dict[str, SceneSplit] = {}
        self._splits: dict[str, UInt8ImageDataset] = {}

    @property
    def cell_size(self) -> int:
        return self.img_size // 2

    def load_split(self, split: str) -> UInt8ImageDataset:
        if not self._splits:
            self.digits.setup()
            first_id = {"train": 0, "val": self.num_train}
            for name, count in (("train", self.num_train), ("val", self.num_val)):
                images, self.scenes[name] = self._compose(name, count)
                # Caption ids: unique across the splits, the train split's first (ImageCaptions' convention).
                self._splits[name] = UInt8ImageDataset(images, np.arange(count, dtype=np.int64) + first_id[name])
        return self._splits[split]

    def _compose(self, split: str, count: int) -> tuple[np.ndarray, SceneSplit]:
        digits = self.digits.train_set if split == "train" else self.digits.val_set
        by_digit = [np.flatnonzero(digits.labels == digit) for digit in range(10)]
        specs = {
            category: [spec for spec in all_specs(category) if split == "val" or not self.held_out.contains(spec)]
            for category in CATEGORIES
        }
        layouts = {spec: spec.layouts() for spec in chain.from_iterable(specs.values())}
        rng = np.random.default_rng([self.scene_seed, _SPLIT_STREAMS[split]])
        size = self.cell_size
        images = np.zeros((count, 1, self.img_size, self.img_size), dtype=np.uint8)
        cells = np.full((count, 4), EMPTY, dtype=np.int64)
        sources = np.full((count, 4), -1, dtype=np.int64)
        chosen = []
        for scene in range(count):
            # Categories equally often, whatever their number of specs: a relation has 90, identity 10.
            candidates = specs[CATEGORIES[rng.integers(len(CATEGORIES))]]
            spec = candidates[rng.integers(len(candidates))]
            layout = layouts[spec][rng.integers(len(layouts[spec]))]
            chosen.append(spec)
            for index, digit in enumerate(layout):
                if digit == EMPTY:
                    continue
                source = by_digit[digit][rng.integers(len(by_digit[digit]))]
                row, column = divmod(index, 2)
                top, left = row * size, column * size
                images[scene, :, top : top + size, left : left + size] = digits.images[source]
                cells[scene, index], sources[scene, index] = digit, source
        held_out = np.array([self.held_out.contains(spec) for spec in chosen], dtype=bool)
        return images, SceneSplit(chosen, cells, sources, held_out)

    def caption_source(self) -> ImageCaptions:
        self.setup()
        specs = self.scenes["train"].specs + self.scenes["val"].specs
        captions = [list(scene_captions(spec)) for spec in specs]
        return ImageCaptions(captions, self.num_train, self._prompt_ids())

    def _prompt_ids(self) -> list[int]:
        """Validation scenes for the epoch-end grids, taking turns over (seen, held out) x category so that the
        first rows show every kind of scene."""
        scenes = self.scenes["val"]
        groups = [
            [self.num_train + index for index, spec in enumerate(scenes.specs)
             if spec.category == category and scenes.held_out[index] == held_out]
            for held_out in (False, True)
            for category in CATEGORIES
        ]
        return [scene for turn in zip_longest(*groups) for scene in turn if scene is not None]

    def evaluation_prompts(self, specs_per_category: int, phrasings: int, seed: int = 0) -> list[ScenePrompt]:
        """Fixed prompts for the scene accuracy: in each category, ``specs_per_category`` contents seen in training
        (drawn from ``seed``) and every held-out content, each in ``phrasings`` of its captions."""
        if specs_per_category < 1 or phrasings < 1:
            raise ValueError(f"scene accuracy needs specs_per_category >= 1 and phrasings >= 1, got "
                             f"{specs_per_category}, {phrasings}")
        rng = np.random.default_rng(seed)
        prompts = []
        for category in CATEGORIES:
            seen = [spec for spec in all_specs(category) if not self.held_out.contains(spec)]
            held_out = [spec for spec in all_specs(category) if self.held_out.contains(spec)]
            picked = rng.choice(len(seen), min(specs_per_category, len(seen)), replace=False)
            for spec in [seen[index] for index in sorted(picked)] + held_out:
                captions = scene_captions(spec)
                for index in sorted(rng.choice(len(captions), min(phrasings, len(captions)), replace=False)):
                    prompts.append(ScenePrompt(captions[index], spec, self.held_out.contains(spec)))
        return prompts
