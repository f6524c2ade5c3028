"""``checkpoints/best_val_<loss>.ckpt``: the epoch with the lowest validation loss the module logs.

The loss is the module's own (``NamesItsValidationLoss``): ``val/ce`` of model=parti gives ``best_val_ce.ckpt``,
``val/masked_ce`` of model=muse ``best_val_masked_ce.ckpt``, so one callback config serves both decoders. On a small
dataset the validation loss turns up once the model starts to memorise the training images: sample and edit from
this checkpoint rather than from ``last.ckpt``.
"""

from __future__ import annotations

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from parti_exp.protocols import NamesItsValidationLoss


class BestValidationLoss(ModelCheckpoint):
    def __init__(self, dirpath: str) -> None:
        # One file, replaced whenever the loss improves (no version counter: best_val_ce.ckpt, never -v1).
        super().__init__(dirpath=dirpath, mode="min", save_top_k=1, auto_insert_metric_name=False,
                         enable_version_counter=False, save_last=False)

    def setup(self, trainer: Trainer, pl_module: NamesItsValidationLoss | LightningModule, stage: str) -> None:
        # Set before Lightning restores callback states on resume (setup runs first), so the state key matches.
        self.monitor = f"val/{pl_module.loss_name}"
        self.filename = f"best_val_{pl_module.loss_name}"
        super().setup(trainer, pl_module, stage)
