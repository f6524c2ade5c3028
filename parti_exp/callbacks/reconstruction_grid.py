"""Originals next to their reconstructions, every N epochs: the image tokenizer's sample grid.

The same held-out images every time, so epochs are comparable cell by cell.
"""

from __future__ import annotations

import torch
from lightning.pytorch import LightningModule, Trainer

from parti_exp.callbacks.epoch_grid import EpochGrid
from parti_exp.data.base import to_signed_unit
from parti_exp.runtime.validation import require

ROW = 8


class ReconstructionGrid(EpochGrid):
    log_key = "reconstructions"

    def __init__(self, dirpath: str, num_images: int = 32, every_n_epochs: int = 1) -> None:
        require(num_images >= 1, "reconstruction_grid", f"needs num_images >= 1, got {num_images}")
        super().__init__(dirpath, every_n_epochs, nrow=ROW)
        self.num_images = num_images

    def draw(self, trainer: Trainer, pl_module: LightningModule) -> torch.Tensor:
        originals = to_signed_unit(torch.from_numpy(trainer.datamodule.val_set.images[: self.num_images].copy()))
        reconstructions = pl_module.reconstruct(originals).cpu()
        # Rows of 8: each row of originals has its reconstructions right below.
        return torch.cat([torch.cat(pair) for pair in zip(originals.split(ROW), reconstructions.split(ROW))])
