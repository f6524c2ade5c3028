"""Reads a digit scene back from pixels: which cells are empty, which digit each other cell holds, and which cells
show no one digit clearly.

A cell is empty when it has almost no ink (black background); otherwise the digit reader of single digits at the
cell's size (``DigitReader``: a confident classifier read near real digits' features) names it, or marks it
``UNREADABLE``: a blend of two digits, a smudge, or a faint digit drawn where the scene should be empty. An
unreadable cell matches no scene. The reader's classifier is trained on the digits' train split only, which is what
every validation scene (and so every evaluation of a generated one) is measured against: it never saw those digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from parti_exp.data.captions.scene_spec import EMPTY
from parti_exp.data.digits import DigitsDataModule
from parti_exp.metrics.digit_classifier import TrainingRecipe, load_or_train_classifier
from parti_exp.metrics.digit_reader import DigitReader
from parti_exp.runtime.images import to_uint8

# A cell whose brightest tenth of pixels stays below this (0 = black, 1 = white) is empty: the 90th percentile
# ignores a few stray bright pixels but not strokes. Real digits at 16 px reach 0.64 or more, an empty real cell 0; a
# generated empty cell is black up to the tokenizer's faint haze. A digit drawn at 30 % of its ink (about 0.2) is
# not empty, and the digit reader declines it: faint ink where the scene has none is an error.
INK_THRESHOLD = 0.15
INK_QUANTILE = 0.9

# Longer than the metrics' default (300 steps, 0.97 on the val digits): a scene of four digits is read right only
# if all four are, so each digit's errors count up to four times. 2000 steps reach about 0.985, trained once.
READER_RECIPE = TrainingRecipe(steps=2000)


@dataclass
class SceneReader:
    digits: DigitReader
    ink_threshold: float = INK_THRESHOLD

    def to(self, device: torch.device) -> SceneReader:
        self.digits.to(device)
        return self

    @torch.no_grad()
    def read(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) canvases in [-1, 1] -> (N, 4) long: each cell's digit in reading order, ``EMPTY`` where the
        cell has no ink, ``UNREADABLE`` where it shows no one digit clearly."""
        pixels = to_uint8(images)  # quantised like a saved PNG, as the classifier's training images are
        n, channels, height, width = pixels.shape
        if height != width or height % 2:
            raise ValueError(f"a scene is a square of 2 x 2 cells: got canvases of {height} x {width}")
        size = height // 2
        # (N, C, 2, size, 2, size) -> (N, 2, 2, C, size, size): the four cells in reading order.
        cells = pixels.view(n, channels, 2, size, 2, size).permute(0, 2, 4, 1, 3, 5)
        cells = cells.reshape(n * 4, channels, size, size)
        ink = cells.flatten(1).float().quantile(INK_QUANTILE, dim=1) / 255
        digits = self.digits.read(cells.float() / 127.5 - 1)
        return torch.where(ink >= self.ink_threshold, digits, torch.full_like(digits, EMPTY)).view(n, 4)


def load_scene_reader(digits: DigitsDataModule, cache_dir: str | Path, device: torch.device) -> SceneReader:
    """The reader for scenes made of ``digits`` (the scenes' source digits, at the cell size): its classifier
    trained on their train split, or read from ``cache_dir`` if it was before."""
    digits.setup()
    trained = load_or_train_classifier(digits.train_set, digits.val_set, 10, cache_dir, device, digits.name,
                                       READER_RECIPE)
    return SceneReader(DigitReader.fitted(trained.net, digits.train_set))
