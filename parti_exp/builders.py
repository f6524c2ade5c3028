"""From a composed Hydra config to live objects. The entry points (train, sample) call these and
nothing else, so tests build exactly what the command line builds."""

from __future__ import annotations

import logging
from typing import Callable

import torch
from hydra._internal.utils import _locate
from lightning.pytorch import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf, open_dict

from parti_exp.callbacks.config_in_checkpoint import ConfigInCheckpoint
from parti_exp.callbacks.cpu_threads import CpuThreads
from parti_exp.callbacks.log_position import LogPositionInCheckpoint
from parti_exp.callbacks.model_summary import SummaryWithoutUncountedFlops
from parti_exp.errors import ConfigError, UnavailableError
from parti_exp.protocols import CompilesNets
from parti_exp.runtime.distributed import accelerator_is_gpu
from parti_exp.runtime.failing_loggers import keep_running_without
from parti_exp.runtime.instantiate import instantiate
from parti_exp.runtime.loggers import LogPosition, ResumableCSVLogger, wandb_logger_kwargs
from parti_exp.runtime.wandb_preflight import start_run, wandb_offline

log = logging.getLogger(__name__)


def build_datamodule(cfg: DictConfig) -> LightningDataModule:
    return instantiate(cfg.data)


def build_module(cfg: DictConfig) -> LightningModule:
    # _convert_="all": optimizer kwargs such as betas arrive as plain lists, not ListConfig.
    module = instantiate(cfg.model, _convert_="all")
    if cfg.get("compile"):
        if not isinstance(module, CompilesNets):
            raise ConfigError(f"compile=true: {type(module).__name__} does not say which of its nets to compile")
        module.compile_nets()
    return module


def build_callbacks(cfg: DictConfig) -> list[Callback]:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    # The metrics group is one callback (or nothing, for metrics=none).
    if cfg.get("metrics") and "_target_" in cfg.metrics:
        callbacks.append(instantiate(cfg.metrics, _convert_="all"))
    callbacks.append(ConfigInCheckpoint(OmegaConf.to_container(cfg, resolve=True)))
    callbacks.append(LogPositionInCheckpoint())
    return callbacks


def build_wandb_logger(logger_cfg: DictConfig, resumed: LogPosition | None = None) -> WandbLogger:
    """The W&B logger, checked and started: a job that cannot log online fails here, before any data is decoded
    (or logs offline with ``fallback_offline``). A resumed run continues the W&B run of its checkpoint."""
    logger_cfg = logger_cfg.copy()
    with open_dict(logger_cfg):
        # Ours, not a WandbLogger argument (its unknown keywords would go to wandb.init).
        fallback_offline = logger_cfg.pop("fallback_offline", False)
    extra = wandb_logger_kwargs(logger_cfg)
    if resumed is not None and resumed.wandb_id and not logger_cfg.get("id"):
        extra.update(id=resumed.wandb_id, resume="allow")
    if wandb_offline(logger_cfg.get("offline", False), fallback_offline):
        # Also told to wandb.init directly: the check may have started W&B's session, which then ignores the
        # WANDB_MODE variable that WandbLogger(offline=True) sets.
        extra.update(offline=True, mode="offline")
    logger = instantiate(logger_cfg, **extra)
    start_run(logger)
    return logger


def build_csv_logger(logger_cfg: DictConfig, resumed: LogPosition | None = None) -> ResumableCSVLogger:
    """The CSV logger; a resumed run's keeps the rows its checkpoint had logged and appends to them."""
    logger = instantiate(logger_cfg)
    if resumed is not None:
        logger.continue_from(resumed)
    return logger


def build_tensorboard_logger(logger_cfg: DictConfig, resumed: LogPosition | None = None) -> TensorBoardLogger:
    """The TensorBoard logger; a resumed run's purges the events logged after its checkpoint's step, which the run
    logs again."""
    extra = {} if resumed is None else {"purge_step": resumed.step + 1}
    return instantiate(logger_cfg, **extra)


# Loggers that need more than instantiate, by the class they are or derive from.
LOGGER_BUILDERS: dict[type[Logger], Callable[[DictConfig, LogPosition | None], Logger]] = {
    WandbLogger: build_wandb_logger,
    ResumableCSVLogger: build_csv_logger,
    TensorBoardLogger: build_tensorboard_logger,
}


def build_logger(logger_cfg: DictConfig, resumed: LogPosition | None = None) -> Logger:
    try:
        # The resolver instantiate itself uses, so the class is the one that would be built.
        logger_class = _locate(logger_cfg._target_)
    except (ImportError, ValueError):
        logger_class = None  # instantiate below says what is wrong with the _target_
    for base, build in LOGGER_BUILDERS.items():
        if isinstance(logger_class, type) and issubclass(logger_class, base):
            return build(logger_cfg, resumed)
    return instantiate(logger_cfg)


def build_loggers(cfg: DictConfig, resumed: LogPosition | None = None) -> list[Logger]:
    """The config's loggers; ``resumed``: where the logs stood at the checkpoint a resumed run starts from."""
    # A logger failing mid-run does not end the run (parti_exp.runtime.failing_loggers).
    return [keep_running_without(build_logger(c, resumed)) for c in (cfg.get("logger") or {}).values() if c is not None]


def build_trainer(cfg: DictConfig, callbacks: list[Callback], loggers: list[Logger]) -> Trainer:
    if cfg.trainer.get("accelerator") == "gpu" and not torch.cuda.is_available():
        raise UnavailableError(
            "trainer.accelerator=gpu, but this machine has no CUDA GPU visible to PyTorch "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). Use trainer=cpu, or "
            "trainer=ddp_sim to exercise the DDP code path on CPU processes."
        )
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    if trainer_cfg.get("sync_batchnorm") and not accelerator_is_gpu(trainer_cfg.get("accelerator", "auto")):
        log.info("trainer.sync_batchnorm=true is for GPUs (torch's SyncBatchNorm): on the CPU each process "
                 "normalises its own batch")
        trainer_cfg["sync_batchnorm"] = False
    # Ours, not a Trainer argument: the thread count of CPU runs (a GPU run is left as it is)
    ours = [CpuThreads(trainer_cfg.pop("cpu_threads", "auto"))]
    if trainer_cfg.get("enable_model_summary", True):
        ours.append(SummaryWithoutUncountedFlops())
        trainer_cfg["enable_model_summary"] = False  # Lightning's flag adds its own table (or a line saying it won't)
    return instantiate(OmegaConf.create(trainer_cfg), callbacks=[*callbacks, *ours], logger=loggers or False)


def resolve_device(name: str) -> torch.device:
    """``device=auto`` (CUDA when available) or a torch device name, for the entry points that run no Trainer."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
