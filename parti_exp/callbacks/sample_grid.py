"""A grid of samples from one fixed noise batch, saved every N epochs (GANs and the VAE).

Fixed latents make epochs comparable: the same cell of the grid shows how one z evolves. With ``truncation=ψ``
a second grid of the same latents truncated (``parti_exp.models.gan.truncation``) is written next to it as
``epoch_NNNN_truncated.png``; its redraws come from ``seed`` too, so it is comparable across epochs as well.
"""

from __future__ import annotations

import torch
from lightning.pytorch import LightningModule, Trainer

from parti_exp.callbacks.epoch_grid import EpochGrid
from parti_exp.data.base import ImageDataModule
from parti_exp.models.gan.truncation import check_truncation
from parti_exp.protocols import LatentImageModel, TruncatesLatents
from parti_exp.runtime.schedule import due_this_epoch
from parti_exp.runtime.validation import require


class SampleGrid(EpochGrid):
    def __init__(
        self,
        dirpath: str,
        num_samples: int = 64,
        every_n_epochs: int = 1,
        seed: int = 0,
        truncation: float | None = None,
    ) -> None:
        require(num_samples >= 1, "sample_grid", f"needs num_samples >= 1, got {num_samples}")
        super().__init__(dirpath, every_n_epochs)
        key = "callbacks.sample_grid.truncation"
        self.truncation = None if truncation is None else check_truncation(truncation, key)
        self.num_samples = num_samples
        self.seed = seed
        self.latents: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not isinstance(pl_module, LatentImageModel):
            raise TypeError(f"sample_grid draws samples from fixed latents (GANs, VAEs); {type(pl_module).__name__} "
                            "has no latents: set callbacks.sample_grid=null")
        truncates = self.truncation is None or isinstance(pl_module, TruncatesLatents)
        require(truncates, "callbacks.sample_grid.truncation", f"is the GANs' truncation trick; "
                f"{type(pl_module).__name__} draws from its prior as it is: set it to null")
        if self.latents is None:
            # Drawn from a private generator so the global RNG stream, and thus training, is unaffected.
            rng = torch.Generator().manual_seed(self.seed)
            self.latents = torch.randn(self.num_samples, pl_module.latent_dim, generator=rng)
            num_classes = trainer.datamodule.num_classes if isinstance(trainer.datamodule, ImageDataModule) else 0
            # Cycle through the classes so a conditional model shows every class; ignored otherwise.
            self.labels = torch.arange(self.num_samples) % max(num_classes, 1)

    def draw(self, trainer: Trainer, pl_module: LightningModule) -> torch.Tensor:
        return pl_module.generate(self.latents, self.labels)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self.truncation is not None and due_this_epoch(trainer, self.every_n_epochs):
            rng = torch.Generator().manual_seed(self.seed)
            images = pl_module.generate_truncated(self.latents, self.labels, self.truncation, rng)
            self._write(trainer, images, trainer.current_epoch, suffix="_truncated")

    def state_dict(self) -> dict:
        return {"latents": self.latents, "labels": self.labels}

    def load_state_dict(self, state_dict: dict) -> None:
        self.latents = state_dict["latents"]
        self.labels = state_dict["labels"]
