"""Stores the run's resolved config in every checkpoint, so a checkpoint alone rebuilds its model
(``python -m parti_exp.sample ckpt_path=...`` needs nothing else)."""

from __future__ import annotations

from lightning.pytorch import Callback, LightningModule, Trainer

from parti_exp.runtime.checkpoints import CONFIG_KEY


class ConfigInCheckpoint(Callback):
    def __init__(self, config: dict) -> None:
        self.config = config

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        checkpoint[CONFIG_KEY] = self.config
