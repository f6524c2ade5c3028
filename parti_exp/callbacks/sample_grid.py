"""A grid of samples from one fixed noise batch, saved every N epochs.

Fixed latents make epochs comparable: the same cell of the grid shows how one z evolves.
"""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only

from parti_exp.images import grid_uint8, save_grid


class SampleGrid(Callback):
    def __init__(self, dirpath: str, num_samples: int = 64, every_n_epochs: int = 1, seed: int = 0) -> None:
        if num_samples < 1 or every_n_epochs < 1:
            raise ValueError(
                f"sample_grid needs num_samples >= 1 and every_n_epochs >= 1, got {num_samples}, {every_n_epochs}"
            )
        self.dirpath = Path(dirpath)
        self.num_samples = num_samples
        self.every_n_epochs = every_n_epochs
        self.seed = seed
        self.latents: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.latents is None:
            # Drawn from a private generator so the global RNG stream, and thus training, is unaffected.
            rng = torch.Generator().manual_seed(self.seed)
            self.latents = torch.randn(self.num_samples, pl_module.latent_dim, generator=rng)
            num_classes = getattr(trainer.datamodule, "num_classes", 0) if trainer.datamodule else 0
            # Cycle through the classes so a conditional model shows every class; ignored otherwise.
            self.labels = torch.arange(self.num_samples) % max(num_classes, 1)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every_n_epochs == 0 or trainer.fast_dev_run:
            images = pl_module.generate(self.latents, self.labels)
            self._write(trainer, images, epoch)

    @rank_zero_only
    def _write(self, trainer: Trainer, images: torch.Tensor, epoch: int) -> None:
        save_grid(images, self.dirpath / f"epoch_{epoch:04d}.png")
        grid = grid_uint8(images)
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):  # W&B
                logger.log_image(key="samples", images=[grid.permute(1, 2, 0).numpy()], step=trainer.global_step)
            elif hasattr(logger.experiment, "add_image"):  # TensorBoard
                logger.experiment.add_image("samples", grid, global_step=trainer.global_step)

    def state_dict(self) -> dict:
        return {"latents": self.latents, "labels": self.labels}

    def load_state_dict(self, state_dict: dict) -> None:
        self.latents = state_dict["latents"]
        self.labels = state_dict["labels"]
