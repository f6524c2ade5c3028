"""Small torch utilities: run a block with nets in eval mode, or with a net's parameters frozen, then put each back
as it was; the loss scale of a run under fp16 loss scaling; a tensor of an array that may be read-only."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.plugins.precision import MixedPrecision
from torch import nn


@contextmanager
def eval_mode(*nets: nn.Module) -> Iterator[None]:
    """Running batch-norm statistics and no dropout inside the block; each net's own mode afterwards."""
    modes = [net.training for net in nets]
    for net in nets:
        net.eval()
    try:
        yield
    finally:
        for net, mode in zip(nets, modes):
            net.train(mode)


@contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """For a backward pass that goes through ``net`` without updating it (G's update through D): autograd neither
    computes nor accumulates its gradients. A parameter the user froze on purpose stays frozen afterwards."""
    parameters = list(net.parameters())
    flags = [p.requires_grad for p in parameters]
    for p in parameters:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(parameters, flags):
            p.requires_grad_(flag)


def grad_scaler(trainer: Trainer | None) -> torch.amp.GradScaler | None:
    """The GradScaler that scales this run's losses (``16-mixed``), None when nothing does (or outside a Trainer)."""
    plugin = trainer.precision_plugin if trainer is not None else None
    scaler = plugin.scaler if isinstance(plugin, MixedPrecision) else None
    return scaler if scaler is not None and scaler.is_enabled() else None


def loss_scale(trainer: Trainer | None) -> float:
    """The GradScaler's current scale under ``16-mixed``, else 1: what a gradient taken by hand (a penalty) of a
    loss-scaled output must be divided by."""
    scaler = grad_scaler(trainer)
    return float(scaler.get_scale()) if scaler is not None else 1.0


def tensor_of(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor holding ``array``: shared when the array is writable, else copied. The uint8 cache is memory-mapped
    read-only, and ``torch.from_numpy`` of a read-only array warns that writing to the tensor would be undefined."""
    array = np.asarray(array)
    return torch.from_numpy(np.ascontiguousarray(array) if array.flags.writeable else np.array(array))
