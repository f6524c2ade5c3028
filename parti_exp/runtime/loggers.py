"""What every run does with its loggers besides logging metrics: record the full resolved config,
group the runs of a sweep, send images to those that show them, continue a resumed run's logs, and close each run
when its job ends.

A resumed run continues the logs of the run it resumes (``LogPosition``): every checkpoint records where the logs
stood when it was written (Lightning's logger step, in its loop state, and the W&B run's id, ``log_position``), and
the resumed run keeps what was logged up to that point and appends to it: the CSV rows logged at later steps are
dropped (the resumed run logs those steps again), TensorBoard purges its events after that step, and W&B continues
the same run. Lightning's ``CSVLogger`` would delete the file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from omegaconf import DictConfig, OmegaConf

from parti_exp.runtime.failing_loggers import guarded

# Where the logs stood when a checkpoint was written (``log_position``), a key of every checkpoint.
LOG_POSITION_KEY = "parti_exp_log_position"


@dataclass
class LogPosition:
    """Where a run's logs stood when the checkpoint it resumes from was written."""

    # Lightning's logger step then (its batches that stepped): what was logged at it and before belongs to the state
    # the checkpoint holds (the batch it was saved after, that epoch's end); the resumed run logs the later steps again
    step: int
    wandb_id: str | None = None


class ContinuingWriter(ExperimentWriter):
    """Lightning's CSV writer which, resuming from ``position``, keeps the rows of an existing ``metrics.csv`` logged
    at its step or before and appends after them under their header, instead of deleting the file."""

    def __init__(self, log_dir: str, position: LogPosition | None) -> None:
        self.position = position
        super().__init__(log_dir)  # runs _check_log_dir_exists

    def _check_log_dir_exists(self) -> None:
        if self.position is None or not self._fs.isfile(self.metrics_file_path):
            super()._check_log_dir_exists()  # a fresh run: Lightning's warning, and the old file goes
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            reader = csv.DictReader(file)
            rows = [row for row in reader if row.get("step", "").isdigit() and int(row["step"]) <= self.position.step]
            header = list(reader.fieldnames or [])
        with self._fs.open(self.metrics_file_path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = header  # the rows to come are written under it (widened when new keys arrive)


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSV logger (``metrics.csv`` and ``hparams.yaml``) that continues a resumed run's file
    (``continue_from``) instead of deleting it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.position: LogPosition | None = None

    def continue_from(self, position: LogPosition) -> None:
        """Keep the rows logged before ``position`` (call before anything is logged)."""
        self.position = position

    @property
    @rank_zero_experiment
    def experiment(self) -> ContinuingWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ContinuingWriter(self.log_dir, self.position)
        return self._experiment


def log_position(loggers: list[Logger]) -> dict:
    """What a checkpoint records of its loggers (on the process that logs): the W&B run's id. The CSV logs are
    flushed, so that a run killed later keeps on disk every row up to the checkpoint."""
    position: dict = {"wandb_id": None}
    for logger in loggers:
        if isinstance(logger, ResumableCSVLogger):
            logger.save()
        elif isinstance(logger, WandbLogger):
            position["wandb_id"] = logger.version
    return position


def resumed_log_position(checkpoint: dict) -> LogPosition:
    """The log position of ``checkpoint``: Lightning's logger step in its loop state, and what it recorded."""
    loop = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.state_dict", {})
    recorded = checkpoint.get(LOG_POSITION_KEY) or {}
    return LogPosition(int(loop.get("_batches_that_stepped", 0)), recorded.get("wandb_id"))


def sweep_group() -> str | None:
    """The sweep directory's name inside a Hydra multirun job (shared by its jobs), else None."""
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return f"{hydra_cfg.job.name}-{hydra_cfg.sweep.dir.rstrip('/').rsplit('/', 1)[-1]}"


def wandb_logger_kwargs(cfg: DictConfig) -> dict:
    """Extra WandbLogger arguments known only at run time: the sweep group."""
    group = sweep_group()
    return {"group": group} if group and not cfg.get("group") else {}


def log_config(loggers: list[Logger], cfg: DictConfig) -> None:
    """The composed, resolved config as the run's hyperparameters (W&B run config, TensorBoard hparams,
    CSV hparams.yaml), so every dashboard shows exactly what ran."""
    config = OmegaConf.to_container(cfg, resolve=True)
    for logger in loggers:
        logger.log_hyperparams(config)


def close_loggers(loggers: list[Logger]) -> None:
    """End each W&B run at the end of its job: otherwise the next job of a sweep, in the same process,
    would log into the previous job's run."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            wandb.finish()


def log_image(loggers: list[Logger], key: str, image: torch.Tensor, step: int) -> None:
    """A uint8 ``C x H x W`` image to the loggers that show images (W&B, TensorBoard); the others skip it."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            guarded(logger, "log_image", lambda wandb=logger: wandb.log_image(
                key=key, images=[image.permute(1, 2, 0).numpy()], step=step))
        elif isinstance(logger, TensorBoardLogger):
            guarded(logger, "log_image", lambda board=logger: board.experiment.add_image(key, image, global_step=step))
