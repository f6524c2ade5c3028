"""Run a block with nets in eval mode (running batch-norm statistics, no dropout), then put each back as it was."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn


@contextmanager
def eval_mode(*nets: nn.Module) -> Iterator[None]:
    modes = [net.training for net in nets]
    for net in nets:
        net.eval()
    try:
        yield
    finally:
        for net, mode in zip(nets, modes):
            net.train(mode)
