"""scikit-learn's 1,797 real handwritten digits (8x8, 17 grey levels), the offline default dataset."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from parti_exp.data.base import ImageDataModule, UInt8ImageDataset
from parti_exp.runtime.validation import is_int_at_least, require


class DigitsDataModule(ImageDataModule):
    """``load_digits`` upsampled to ``img_size`` (bilinear), with a fixed, seeded held-out split.

    The split is drawn from its own seed so that changing the training seed never moves images
    between train and val.
    """

    name = "digits"

    def __init__(
        self,
        img_size: int = 32,
        channels: int = 1,
        num_classes: int = 10,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        num_workers: int = 0,
        num_train: int | None = None,
    ) -> None:
        require(channels == 1 and num_classes == 10, "the digits",
                f"are grayscale with 10 classes; got data.channels={channels}, data.num_classes={num_classes} (these "
                "keys describe the dataset, they do not change it)")
        super().__init__(
            img_size=img_size, channels=1, num_classes=10, batch_size=batch_size, num_workers=num_workers
        )
        require(0.0 < val_fraction < 1.0, "data.val_fraction", f"must be in (0, 1), got {val_fraction}")
        require(num_train is None or is_int_at_least(num_train, 1), "data.num_train",
                f"must be null (all training digits) or an integer >= 1, got {num_train!r}")
        self.val_fraction = val_fraction
        self.num_train = num_train
        self.split_seed = split_seed
        self._splits: dict[str, UInt8ImageDataset] | None = None

    def load_split(self, split: str) -> UInt8ImageDataset:
        if self._splits is None:
            self._splits = self._build_splits()
        return self._splits[split]

    def _build_splits(self) -> dict[str, UInt8ImageDataset]:
        digits = load_digits()
        images = torch.from_numpy(digits.images).float().unsqueeze(1) / 16.0  # 0..16 grey levels -> [0, 1]
        if self.img_size != images.shape[-1]:
            images = F.interpolate(images, size=self.img_size, mode="bilinear", align_corners=False)
        images = (images.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        labels = digits.target.astype(np.int64)

        order = np.random.default_rng(self.split_seed).permutation(len(images))
        n_val = max(1, round(self.val_fraction * len(images)))
        # A smaller training set is a prefix of the same shuffled order: the val split does not change with it.
        val, train = order[:n_val], order[n_val:][: self.num_train]
        return {
            "train": UInt8ImageDataset(images[train], labels[train]),
            "val": UInt8ImageDataset(images[val], labels[val]),
        }
