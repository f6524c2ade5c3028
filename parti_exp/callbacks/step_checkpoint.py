"""ModelCheckpoint that can also save every N generator steps.

Lightning's ``every_n_train_steps`` counts ``trainer.global_step``, which under manual optimization grows by
one for every optimizer step, D's and G's alike, so "every N steps" would mean something different for every
n_critic. A GAN's progress is its generator step: ``every_n_g_steps`` refreshes ``last.ckpt`` whenever the
module's ``progress_step`` (``ReportsProgress``) reaches a multiple of N, mid-epoch included, so a crash loses at
most N generator steps. A module with one optimizer (the VAE, the text-to-image Transformer) counts its optimizer
steps.
"""

from __future__ import annotations

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from parti_exp.runtime.validation import is_int_at_least, require


class StepCheckpoint(ModelCheckpoint):
    def __init__(self, *args, every_n_g_steps: int | None = None, **kwargs) -> None:
        require(every_n_g_steps is None or is_int_at_least(every_n_g_steps, 1), "model_checkpoint.every_n_g_steps",
                f"must be a positive integer or null, got {every_n_g_steps!r}")
        super().__init__(*args, **kwargs)
        self.every_n_g_steps = every_n_g_steps
        self._last_g_step_saved = -1

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        g_step = pl_module.progress_step
        if (
            self.every_n_g_steps is None
            or g_step == 0
            or g_step % self.every_n_g_steps
            or g_step == self._last_g_step_saved
            or self._should_skip_saving_checkpoint(trainer)
        ):
            return
        self.save_last_now(trainer)
        self._last_g_step_saved = g_step

    def save_last_now(self, trainer: Trainer) -> str:
        """Write ``last.ckpt`` with the state of this moment (used by the step schedule and by preemption)."""
        epoch_end_marker = self._last_global_step_saved
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        # ModelCheckpoint skips its epoch-end save when a checkpoint exists for this global step: a step save of
        # last.ckpt that falls on the epoch's last batch must not cost the epoch its epoch_NNNN.ckpt.
        self._last_global_step_saved = epoch_end_marker
        return self.last_model_path
