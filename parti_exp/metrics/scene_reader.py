"""Reads a digit scene back from pixels: which cells are empty, and which digit each other cell holds.

A cell is empty when it has almost no ink (black background); otherwise the digit classifier of single digits at
the cell's size names it. That classifier is trained on the digits' train split only, which is what every
validation scene (and so every evaluation of a generated one) is measured against: it never saw those digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from parti_exp.data.captions.scene_spec import EMPTY
from parti_exp.data.digits import DigitsDataModule
from parti_exp.metrics.digit_classifier import DigitClassifier, TrainingRecipe, load_or_train_classifier
from parti_exp.runtime.images import to_uint8

# A cell with less mean ink than this (0 = black, 1 = white) is empty. The faintest real digit at 16 px has 0.18
# and the average 0.30; a generated empty cell is black up to the tokenizer's faint noise.
INK_THRESHOLD = 0.08

# Longer than the metrics' default (300 steps, 0.97 on the val digits): a scene of four digits is read right only
# if all four are, so each digit's errors count up to four times. 2000 steps reach about 0.985, trained once.
READER_RECIPE = TrainingRecipe(steps=2000)


@dataclass
class SceneReader:
    classifier: DigitClassifier
    ink_threshold: float = INK_THRESHOLD

    @torch.no_grad()
    def read(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) canvases in [-1, 1] -> (N, 4) long: each cell's digit in reading order, ``EMPTY`` where the
        cell has no ink."""
        pixels = to_uint8(images)  # quantised like a saved PNG, as the classifier's training images are
        n, channels, height, width = pixels.shape
        if height != width or height % 2:
            raise ValueError(f"a scene is a square of 2 x 2 cells: got canvases of {height} x {width}")
        size = height // 2
        # (N, C, 2, size, 2, size) -> (N, 2, 2, C, size, size): the four cells in reading order.
        cells = pixels.view(n, channels, 2, size, 2, size).permute(0, 2, 4, 1, 3, 5)
        cells = cells.reshape(n * 4, channels, size, size)
        ink = cells.float().mean(dim=(1, 2, 3)) / 255
        device = next(self.classifier.parameters()).device
        digits = self.classifier(cells.to(device))[1].argmax(dim=-1).cpu()
        return torch.where(ink >= self.ink_threshold, digits, torch.full_like(digits, EMPTY)).view(n, 4)


def load_scene_reader(digits: DigitsDataModule, cache_dir: str | Path, device: torch.device) -> SceneReader:
    """The reader for scenes made of ``digits`` (the scenes' source digits, at the cell size): its classifier
    trained on their train split, or read from ``cache_dir`` if it was before."""
    digits.setup()
    trained = load_or_train_classifier(digits.train_set, digits.val_set, 10, cache_dir, device, digits.name,
                                       READER_RECIPE)
    return SceneReader(trained.net)
