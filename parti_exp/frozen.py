"""Run a block with a net's parameters frozen (``requires_grad`` off), then give each its own flag back."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn


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
