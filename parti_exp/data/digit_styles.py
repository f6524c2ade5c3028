"""``data=digit_styles``: two styles of the embedded digits for unpaired translation (CycleGAN), offline.

Domain A is the digits as ``data=digits`` serves them; domain B the same kind of digits with thicker strokes: a
3 x 3 grey-level dilation (each pixel the brightest of its 3 x 3 neighbourhood; the ink is bright) at the served
size (16 px by default). In training each domain is drawn from its own half of the digits' train split, so no image
has its partner in the other domain and a model has to learn the style from unpaired sets. The validation split is
the digits' own val split, each digit beside its own dilation (aligned pairs). Because the mapping A -> B is known
(``dilate``), what a model learned can be measured against it (``scripts/bench_translation.py``).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import grey_dilation

from parti_exp.data.base import ImageDataModule
from parti_exp.data.digits import DigitsDataModule
from parti_exp.data.image_pairs import PairedImageDataset, UnpairedImageDataset
from parti_exp.runtime.validation import require

DILATION = 3  # the structuring element's side in pixels


def dilate(images: np.ndarray) -> np.ndarray:
    """Domain B from domain A: a 3 x 3 grey-level dilation of each uint8 ``N x C x H x W`` image."""
    return grey_dilation(images, size=(1, 1, DILATION, DILATION))


class DigitStylesDataModule(ImageDataModule):
    """Thin (A) and thick (B) digits, unpaired; labels are the digits' classes."""

    name = "digit_styles"
    aligned = False  # ServesImagePairs: in training A and B are drawn independently ...
    val_aligned = True  # ... the validation split pairs each digit with its own dilation

    def __init__(
        self,
        img_size: int = 16,
        channels: int = 1,
        num_classes: int = 10,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        require(channels == 1 and num_classes == 10, "the digit styles",
                f"are grayscale with 10 classes; got data.channels={channels}, data.num_classes={num_classes} (these "
                "keys describe the dataset, they do not change it)")
        super().__init__(img_size=img_size, channels=1, num_classes=10, batch_size=batch_size,
                         num_workers=num_workers)
        self.digits = DigitsDataModule(img_size=img_size, batch_size=1, val_fraction=val_fraction,
                                       split_seed=split_seed)
        self.split_seed = split_seed

    def load_split(self, split: str) -> PairedImageDataset | UnpairedImageDataset:
        self.digits.setup()
        if split == "val":
            val = self.digits.val_set
            return PairedImageDataset(np.concatenate([val.images, dilate(val.images)], 1), np.asarray(val.labels))
        train = self.digits.train_set
        # The halves come from their own seed: the training seed never moves a digit from one domain to the other.
        order = np.random.default_rng(self.split_seed + 1).permutation(len(train))
        half = len(order) // 2
        a, b = np.sort(order[:half]), np.sort(order[half:])
        labels = np.asarray(train.labels)
        return UnpairedImageDataset(train.images[a], dilate(train.images[b]), labels[b], seed=self.split_seed)
