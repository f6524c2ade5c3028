"""Checks on a composed config that would otherwise fail only after data loading or the first steps."""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from parti_exp.errors import ConfigError


def check_train_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming the key, the value and the fix for settings no run can use."""
    for key in ("model.g_optimizer.lr", "model.d_optimizer.lr", "model.optimizer.lr"):
        lr = OmegaConf.select(cfg, key, default=None)
        if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):
            raise ConfigError(f"{key} must be a positive number, got {lr!r}")
    batch_size = OmegaConf.select(cfg, "data.batch_size", default=None)
    if batch_size is not None and not (isinstance(batch_size, int) and batch_size > 0):
        raise ConfigError(f"data.batch_size must be a positive integer, got {batch_size!r}")
    precision = str(OmegaConf.select(cfg, "trainer.precision", default="32-true"))
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="auto"))
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if precision in ("16-mixed", "16") and on_cpu:
        # Lightning would silently run bf16 instead, so the run would not be what was asked for.
        raise ConfigError(
            f"precision={precision} needs a CUDA GPU (float16 autocast with loss scaling), but this run is on the "
            "CPU. Use precision=bf16-mixed on the CPU, or precision=32-true"
        )
