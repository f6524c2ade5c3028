"""A text-to-image model's sample grid: one row per prompt (the class prompts of labelled data, the captions of the
first validation images of captioned data), the prompt written above its row as in ``sample``'s grid.png, the same
sampler seed every epoch."""

from __future__ import annotations

import torch
from lightning.pytorch import LightningModule, Trainer

from parti_exp.callbacks.epoch_grid import EpochGrid
from parti_exp.runtime.images import captioned_grid_uint8
from parti_exp.runtime.validation import require


class PromptGrid(EpochGrid):
    def __init__(
        self, dirpath: str, per_prompt: int = 8, num_prompts: int = 10, every_n_epochs: int = 1, seed: int = 0
    ) -> None:
        require(per_prompt >= 1 and num_prompts >= 1, "prompt_grid",
                f"needs per_prompt >= 1 and num_prompts >= 1, got {per_prompt}, {num_prompts}")
        super().__init__(dirpath, every_n_epochs, nrow=per_prompt)
        self.per_prompt = per_prompt
        self.num_prompts = num_prompts
        self.seed = seed
        self.prompts: list[str] = []  # the rows of the last grid drawn

    def draw(self, trainer: Trainer, pl_module: LightningModule) -> torch.Tensor:
        self.prompts = list(trainer.datamodule.caption_source().prompts(self.num_prompts))
        captions = [prompt for prompt in self.prompts for _ in range(self.per_prompt)]
        # A private generator: drawing the grid does not move the training run's random stream.
        generator = torch.Generator(pl_module.device).manual_seed(self.seed)
        return pl_module.sample_images(captions, generator=generator)

    def grid(self, images: torch.Tensor) -> torch.Tensor:
        rows = images.split(self.per_prompt)
        return captioned_grid_uint8(list(zip(self.prompts, rows)))
