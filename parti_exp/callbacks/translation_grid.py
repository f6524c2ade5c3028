"""Translations of fixed held-out images, every N epochs: the image-to-image models' sample grid.

The first ``num_images`` images of the validation split, their inputs drawn from ``seed`` (the same noise and holes
every epoch), so epochs are comparable cell by cell. Rows of 8: pix2pix's inputs, their outputs, their targets
below one another; CycleGAN's a, G_AB(a), G_BA(G_AB(a)) and then the same from b.
"""

from __future__ import annotations

import torch
from lightning.pytorch import LightningModule, Trainer

from parti_exp.callbacks.epoch_grid import EpochGrid
from parti_exp.data.base import to_signed_unit
from parti_exp.protocols import ShowsTranslations
from parti_exp.runtime.validation import require

ROW = 8


def interleaved(rows: list[torch.Tensor]) -> tuple[torch.Tensor, int]:
    """The images of a grid whose lines take ``ROW`` images (fewer when the rows are shorter) of every row in turn,
    so that the input, output and target of an item line up; and the images per line. A last, shorter group is
    padded with black."""
    width = min(ROW, len(rows[0]))
    padding = -len(rows[0]) % width
    padded = [torch.cat([row, row.new_full((padding, *row.shape[1:]), -1.0)]) for row in rows]
    return torch.cat([torch.cat(group) for group in zip(*(row.split(width) for row in padded))]), width


class TranslationGrid(EpochGrid):
    log_key = "translations"

    def __init__(self, dirpath: str, num_images: int = 16, every_n_epochs: int = 1, seed: int = 0) -> None:
        require(num_images >= 1, "translation_grid", f"needs num_images >= 1, got {num_images}")
        super().__init__(dirpath, every_n_epochs, nrow=ROW)
        self.num_images = num_images
        self.seed = seed

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not isinstance(pl_module, ShowsTranslations):
            raise TypeError(f"translation_grid shows an image-to-image model's translations; "
                            f"{type(pl_module).__name__} translates nothing: set callbacks.translation_grid=null")

    def draw(self, trainer: Trainer, pl_module: LightningModule) -> torch.Tensor:
        held_out = trainer.datamodule.val_set
        count = min(self.num_images, len(held_out))
        images, _ = held_out.__getitems__(list(range(count)))
        rows = pl_module.translation_examples(to_signed_unit(images), torch.Generator().manual_seed(self.seed))
        grid, self.nrow = interleaved([row.float().cpu() for row in rows])
        return grid
