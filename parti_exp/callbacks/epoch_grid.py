"""What every per-epoch image grid shares: when it is drawn, where it is written, which loggers get it.

A subclass says only what to draw (``draw``); the grid goes to ``<dirpath>/epoch_NNNN.png`` and, as
``log_key``, to W&B and TensorBoard when they are among the loggers.
"""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only

from parti_exp.runtime.images import grid_uint8, save_uint8
from parti_exp.runtime.loggers import log_image
from parti_exp.runtime.schedule import check_every_n_epochs, due_this_epoch


class EpochGrid(Callback):
    log_key = "samples"

    def __init__(self, dirpath: str, every_n_epochs: int = 1, nrow: int | None = None) -> None:
        check_every_n_epochs(type(self).__name__, every_n_epochs)
        self.dirpath = Path(dirpath)
        self.every_n_epochs = every_n_epochs
        self.nrow = nrow

    def draw(self, trainer: Trainer, pl_module: LightningModule) -> torch.Tensor:
        """The grid's images in [-1, 1], N x C x H x W (called on every rank)."""
        raise NotImplementedError(f"{type(self).__name__} must implement draw")

    def grid(self, images: torch.Tensor) -> torch.Tensor:
        """The drawn ``images`` as one ``C x H x W`` uint8 picture: ``nrow`` to a row (a subclass may label them)."""
        return grid_uint8(images, self.nrow)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if due_this_epoch(trainer, self.every_n_epochs):
            self._write(trainer, self.draw(trainer, pl_module), trainer.current_epoch)

    @rank_zero_only
    def _write(self, trainer: Trainer, images: torch.Tensor, epoch: int, suffix: str = "") -> None:
        """``suffix`` tells a second grid of the same epoch apart, in its file name and its log key."""
        grid = self.grid(images)
        save_uint8(grid, self.dirpath / f"epoch_{epoch:04d}{suffix}.png")
        log_image(trainer.loggers, self.log_key + suffix, grid, trainer.global_step)
