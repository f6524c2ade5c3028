"""Small torch utilities: run a block with nets in eval mode, or with a net's parameters frozen, then put each back
as it was."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

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
