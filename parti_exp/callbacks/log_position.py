"""Records in every checkpoint where the run's logs stood when it was written (``parti_exp.runtime.loggers``), so
that a run resumed from it continues its CSV, TensorBoard and W&B logs without losing or repeating a row."""

from __future__ import annotations

from lightning.pytorch import Callback, LightningModule, Trainer

from parti_exp.runtime.loggers import LOG_POSITION_KEY, log_position


class LogPositionInCheckpoint(Callback):
    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        # The process that logs is the one whose checkpoint is written.
        if trainer.is_global_zero:
            checkpoint[LOG_POSITION_KEY] = log_position(trainer.loggers)
