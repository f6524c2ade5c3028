"""Originals next to their reconstructions, every N epochs: the image tokenizer's sample grid.

The same held-out images every time, so epochs are comparable cell by cell.
"""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only

from parti_exp.data.base import to_signed_unit
from parti_exp.images import save_grid


class ReconstructionGrid(Callback):
    def __init__(self, dirpath: str, num_images: int = 32, every_n_epochs: int = 1) -> None:
        if num_images < 1 or every_n_epochs < 1:
            raise ValueError(
                f"reconstruction_grid needs num_images >= 1 and every_n_epochs >= 1, got {num_images}, {every_n_epochs}"
            )
        self.dirpath = Path(dirpath)
        self.num_images = num_images
        self.every_n_epochs = every_n_epochs

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every_n_epochs and not trainer.fast_dev_run:
            return
        originals = to_signed_unit(torch.from_numpy(trainer.datamodule.val_set.images[: self.num_images].copy()))
        reconstructions = pl_module.reconstruct(originals).cpu()
        # Rows of 8: originals on odd rows, their reconstructions right below.
        rows = [torch.cat([o, r]) for o, r in zip(originals.split(8), reconstructions.split(8))]
        self._write(torch.cat(rows), epoch)

    @rank_zero_only
    def _write(self, images: torch.Tensor, epoch: int) -> None:
        save_grid(images, self.dirpath / f"epoch_{epoch:04d}.png", nrow=8)
