"""Preemption: on SIGTERM / SIGUSR1 / SIGUSR2, finish the current step, save, stop, and (under SLURM) requeue.

Clusters announce a kill with a signal some seconds or minutes ahead (SLURM: ``--signal``, submitit: USR2,
preemption and ``scancel``: TERM). Saving inside the signal handler would catch the run in the middle of an
update, so the handler only notes the signal; the checkpoint is written after the step in progress, where a
resumed run continues exactly. Under DDP the ranks agree (any rank signalled stops all) before one more step
is taken, so every rank stops at the same step.

The run then ends by raising ``Preempted`` at the next hook (once the step's values are logged), which the training
entry point reports and exits 0 on: Lightning's ``should_stop`` would be ignored until ``min_epochs`` is reached.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Sequence

from lightning.pytorch import Callback, LightningModule, Trainer

from parti_exp.callbacks.step_checkpoint import StepCheckpoint
from parti_exp.runtime.validation import require

log = logging.getLogger(__name__)


class Preempted(Exception):
    """Training stopped on a signal after saving ``checkpoint``."""

    def __init__(self, signal_name: str, checkpoint: str, g_step: int, requeued: bool) -> None:
        self.signal_name = signal_name
        self.checkpoint = checkpoint
        self.g_step = g_step
        self.requeued = requeued
        then = "the job was requeued and will resume from it" if requeued else f"resume with ckpt_path={checkpoint}"
        super().__init__(f"received {signal_name}: saved {checkpoint} at G step {g_step} and stopped; {then}")


def slurm_job_id() -> str | None:
    """The id ``scontrol requeue`` takes: ``<array job>_<task>`` for array jobs, else ``SLURM_JOB_ID``."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array_job is not None and "SLURM_ARRAY_TASK_ID" in os.environ:
        return f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID")


class Preemption(Callback):
    def __init__(
        self, signals: Sequence[str] = ("SIGTERM", "SIGUSR1", "SIGUSR2"), requeue_on_slurm: bool = True
    ) -> None:
        unknown = [name for name in signals if not hasattr(signal, name)]
        require(not unknown, "preemption.signals:", f"unknown signal names {unknown} (use names such as SIGTERM)")
        self.signals = tuple(signals)
        self.requeue_on_slurm = requeue_on_slurm
        self.received: str | None = None
        self.stopping: Preempted | None = None  # set once the checkpoint is written
        self._previous: dict[int, object] = {}

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # After Lightning installed its own SIGTERM handler (it would abort mid-epoch without a checkpoint).
        if threading.current_thread() is not threading.main_thread():
            log.warning("preemption: training runs outside the main thread, signals cannot be caught")
            return
        for name in self.signals:
            number = getattr(signal, name)
            self._previous[number] = signal.getsignal(number)
            signal.signal(number, self._note)

    def _note(self, signum: int, frame) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name
            log.warning("received %s: stopping after the current step with a checkpoint", self.received)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        # One tiny collective per step under DDP, so that all ranks stop after the same step.
        stop = trainer.strategy.reduce_boolean_decision(self.received is not None, all=False)
        if not stop:
            return
        path = self._save(trainer)
        requeued = trainer.is_global_zero and self._requeue()
        self.stopping = Preempted(self.received or "a signal on another rank", path, pl_module.progress_step,
                                  requeued)

    def _stop_if_saved(self, *args, **kwargs) -> None:
        # Raised at the next hook, not in on_train_batch_end: Lightning logs the step's values after that hook, and
        # the saved state includes the step, so a resumed run would never log them.
        if self.stopping is not None:
            raise self.stopping

    on_train_batch_start = on_validation_start = on_train_epoch_end = on_train_end = _stop_if_saved

    def _save(self, trainer: Trainer) -> str:
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, StepCheckpoint) and callback.save_last:
                return callback.save_last_now(trainer)
        path = os.path.join(trainer.default_root_dir, "checkpoints", "last.ckpt")
        trainer.save_checkpoint(path)
        return path

    def _requeue(self) -> bool:
        job = slurm_job_id()
        if not self.requeue_on_slurm or job is None:
            return False
        try:
            result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        except OSError as error:
            log.error("cannot requeue SLURM job %s: %s", job, error)
            return False
        if result.returncode != 0:
            log.error("scontrol requeue %s failed (%s): %s", job, result.returncode, result.stderr.strip())
            return False
        log.warning("requeued SLURM job %s", job)
        return True

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()
