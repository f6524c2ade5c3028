"""Datasets of image pairs for the image-to-image models: each item is two images of one size stacked as channels,
``[:C]`` from domain A (the input), ``[C:]`` from domain B (the target), so a pair travels through the uint8
batches, the device transfer, the flips (one coin for both images) and the resume position like a single image.

A split's ``images`` are its B side, what a translator's outputs are compared with (the metrics read them);
``sources`` its A side.
"""

from __future__ import annotations

import numpy as np
import torch

from parti_exp.data.base import UInt8ImageDataset


class PairedImageDataset(UInt8ImageDataset):
    """Aligned pairs: a uint8 ``N x 2C x H x W`` array whose item i is input i beside its own target."""

    def __init__(self, pairs: np.ndarray, labels: np.ndarray) -> None:
        channels = pairs.shape[1] // 2
        super().__init__(pairs[:, channels:], labels)  # views: a memory-mapped cache stays mapped
        self.pairs = pairs
        self.sources = pairs[:, :channels]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.array(self.pairs[index])), torch.as_tensor(self.labels[index])

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = np.sort(np.asarray(indices))
        return torch.from_numpy(self.pairs[index]), torch.from_numpy(np.asarray(self.labels[index]))


class UnpairedImageDataset(UInt8ImageDataset):
    """Two unpaired sets of one image shape (CycleGAN's): ``max(len(A), len(B))`` items, item i being A image
    ``i mod len(A)`` beside B image ``partner[i]``, a fixed random permutation (from ``seed``) folded onto B.

    Which A meets which B in an item does not matter to a model of unpaired data (every loss term reads one image of
    each side); what matters is that each side's images come in a fresh random order every epoch, which the epoch
    sampler's shuffle of the items gives, and that files of the same name in the two folders (often true partners)
    do not always meet. Labels are B's, as ``images`` are."""

    def __init__(
        self, sources: np.ndarray, images: np.ndarray, labels: np.ndarray, seed: int = 0
    ) -> None:
        super().__init__(images, labels)
        if sources.dtype != np.uint8 or sources.shape[1:] != images.shape[1:]:
            raise ValueError(f"domain A's images must be uint8 of B's shape {images.shape[1:]}, got {sources.dtype} "
                             f"{sources.shape[1:]}")
        self.sources = sources
        self.length = max(len(sources), len(images))
        self.partner = np.random.default_rng(seed).permutation(self.length) % len(images)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.__getitems__([index])
        return images[0], labels[0]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = np.sort(np.asarray(indices))
        partners = self.partner[index]
        pairs = np.concatenate([self.sources[index % len(self.sources)], self.images[partners]], axis=1)
        return torch.from_numpy(pairs), torch.from_numpy(np.asarray(self.labels[partners]))
