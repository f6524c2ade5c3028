"""A text-to-image model's sample grid: one row per class prompt, the same sampler seed every epoch."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only

from parti_exp.images import save_grid


class PromptGrid(Callback):
    def __init__(self, dirpath: str, per_prompt: int = 8, every_n_epochs: int = 1, seed: int = 0) -> None:
        if per_prompt < 1 or every_n_epochs < 1:
            raise ValueError(f"prompt_grid needs per_prompt >= 1 and every_n_epochs >= 1, got {per_prompt}, "
                             f"{every_n_epochs}")  # fmt: skip
        self.dirpath = Path(dirpath)
        self.per_prompt = per_prompt
        self.every_n_epochs = every_n_epochs
        self.seed = seed

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every_n_epochs and not trainer.fast_dev_run:
            return
        prompts = pl_module.captioner.prompts_for_classes()
        captions = [prompt for prompt in prompts for _ in range(self.per_prompt)]
        # A private generator: drawing the grid does not move the training run's random stream.
        generator = torch.Generator(pl_module.device).manual_seed(self.seed)
        images = pl_module.sample_images(captions, generator=generator)
        self._write(images, epoch)

    @rank_zero_only
    def _write(self, images: torch.Tensor, epoch: int) -> None:
        save_grid(images, self.dirpath / f"epoch_{epoch:04d}.png", nrow=self.per_prompt)
