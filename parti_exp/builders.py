"""From a composed Hydra config to live objects. The entry points (train, sample) call these and
nothing else, so tests build exactly what the command line builds."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from lightning.pytorch import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from parti_exp.callbacks.config_in_checkpoint import CONFIG_KEY, ConfigInCheckpoint
from parti_exp.loggers import wandb_logger_kwargs

log = logging.getLogger(__name__)

# Errors our constructors raise on purpose, with messages written for the user: shown as they are.
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, NotADirectoryError, PermissionError)


def instantiate(config, *args, **kwargs):
    """``hydra.utils.instantiate``, but a constructor's own validation error reaches the user unwrapped instead of
    inside Hydra's "Error in call to target ..." with the config dumped after it."""
    try:
        return hydra_instantiate(config, *args, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, USER_ERRORS):
            raise error.__cause__ from None
        raise


def build_datamodule(cfg: DictConfig) -> LightningDataModule:
    return instantiate(cfg.data)


def build_module(cfg: DictConfig) -> LightningModule:
    # _convert_="all": optimizer kwargs such as betas arrive as plain lists, not ListConfig.
    module = instantiate(cfg.model, _convert_="all")
    if cfg.get("compile"):
        compile_nets(module)
    return module


def compile_nets(module: LightningModule) -> None:
    """torch.compile G and D in place (``nn.Module.compile`` keeps the state_dict keys, so checkpoints
    stay loadable without compiling). A D whose regularizers differentiate through it twice (gradient
    penalty, R1) stays eager: torch.compile does not support double backward."""
    module.generator.compile()
    if getattr(module, "regularizers", None):
        log.warning(
            "compile=true: the discriminator stays eager because its regularizers (%s) need double backward, "
            "which torch.compile does not support; the generator is compiled",
            ", ".join(module.regularizers),
        )
    else:
        module.discriminator.compile()


def build_callbacks(cfg: DictConfig) -> list[Callback]:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    # The metrics group is one callback (or nothing, for metrics=none).
    if cfg.get("metrics") and "_target_" in cfg.metrics:
        callbacks.append(instantiate(cfg.metrics, _convert_="all"))
    callbacks.append(ConfigInCheckpoint(OmegaConf.to_container(cfg, resolve=True)))
    return callbacks


def build_loggers(cfg: DictConfig) -> list[Logger]:
    loggers = []
    for logger_cfg in (cfg.get("logger") or {}).values():
        if logger_cfg is None:
            continue
        extra = wandb_logger_kwargs(logger_cfg) if logger_cfg._target_.endswith("WandbLogger") else {}
        loggers.append(instantiate(logger_cfg, **extra))
    return loggers


def build_trainer(cfg: DictConfig, callbacks: list[Callback], loggers: list[Logger]) -> Trainer:
    if cfg.trainer.get("accelerator") == "gpu" and not torch.cuda.is_available():
        raise RuntimeError(
            "trainer.accelerator=gpu, but this machine has no CUDA GPU visible to PyTorch "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). Use trainer=cpu, or "
            "trainer=ddp_sim to exercise the DDP code path on CPU processes."
        )
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)


def load_checkpoint(path: str | Path) -> dict:
    """Read a parti_exp checkpoint on the CPU, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={path} does not exist (or is not a file)")
    try:
        # Memory-mapped: checks that read only the stored config (a resume's) do not read every tensor.
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as error:  # torch raises several types for a non-checkpoint file
        raise ValueError(f"ckpt_path={path} is not a readable PyTorch checkpoint: {error}") from error
    if not isinstance(checkpoint, dict) or CONFIG_KEY not in checkpoint or "state_dict" not in checkpoint:
        raise ValueError(
            f"ckpt_path={path} is not a parti_exp training checkpoint (no stored run config); "
            "use a .ckpt written by `python -m parti_exp.train` (<run dir>/checkpoints/last.ckpt)"
        )
    return checkpoint


def module_from_checkpoint(checkpoint: dict) -> tuple[LightningModule, DictConfig]:
    """Rebuild the trained module from the config stored in the checkpoint and load its weights."""
    cfg = OmegaConf.create(checkpoint[CONFIG_KEY])
    module = build_module(cfg)
    module.load_state_dict(checkpoint["state_dict"])
    module.on_load_checkpoint(checkpoint)
    return module, cfg
