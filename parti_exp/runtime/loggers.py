"""What every run does with its loggers besides logging metrics: record the full resolved config,
group the runs of a sweep, send images to those that show them, and close each run when its job ends."""

from __future__ import annotations

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf


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
            logger.log_image(key=key, images=[image.permute(1, 2, 0).numpy()], step=step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, image, global_step=step)
