"""Stores the run's resolved config in every checkpoint, so a checkpoint alone rebuilds its model
(``python -m parti_exp.sample ckpt_path=...`` needs nothing else), and what a model card says of the run beside it
(``RUN_KEY``): the git commit of the code and the training's wall time, summed over resumed jobs."""

from __future__ import annotations

import time

from lightning.pytorch import Callback, LightningModule, Trainer

from parti_exp.runtime.checkpoints import CONFIG_KEY
from parti_exp.runtime.source_version import source_commit

RUN_KEY = "parti_exp_run"


class ConfigInCheckpoint(Callback):
    def __init__(self, config: dict) -> None:
        self.config = config
        self.commit = source_commit()
        # Seconds of earlier jobs of this run (a resume's checkpoint says), and when this job's fit started.
        self.earlier_seconds = 0.0
        self.started: float | None = None

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.started = time.monotonic()

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        self.earlier_seconds = float((checkpoint.get(RUN_KEY) or {}).get("wall_time_s") or 0.0)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        checkpoint[CONFIG_KEY] = self.config
        this_job = 0.0 if self.started is None else time.monotonic() - self.started
        checkpoint[RUN_KEY] = {"git_commit": self.commit, "wall_time_s": self.earlier_seconds + this_job}
