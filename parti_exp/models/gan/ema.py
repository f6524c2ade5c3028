"""Exponential moving average of the generator's weights (Karras et al. 2018; Yazıcı et al. 2019).

Samples from the averaged weights are usually cleaner than from the last iterate, whose weights still
oscillate with the adversarial game. The average is a frozen copy of G: it never trains, it is only
pulled towards G after each G step, and batch-norm statistics (buffers) are copied, not averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from parti_exp.runtime.validation import require


class EMA:
    """``average <- beta * average + (1 - beta) * net`` after every G step.

    Give either ``beta`` per step, or ``half_life_images``: the number of generated images after which an
    old weight's share has halved (StyleGAN2's ``ema_kimg``), so the horizon does not change with the batch
    size: ``beta = 0.5 ** (images_per_step / half_life_images)``. With ``rampup`` the half-life is at most
    ``rampup`` times the images generated so far (StyleGAN2-ADA's ``ema_rampup``): early on, a long
    half-life would keep the random initial weights in the average long after G has left them.
    """

    def __init__(
        self, beta: float | None = None, half_life_images: float | None = None, rampup: float | None = None
    ) -> None:
        require(
            (beta is None) != (half_life_images is None),
            "model.ema",
            f"needs exactly one of beta or half_life_images, got beta={beta}, half_life_images={half_life_images} "
            "(on the command line, a key overridden in a model's default EMA keeps the others: set the one you do not "
            "want to null, e.g. model.ema.half_life_images=null model.ema.rampup=null)",
        )
        require(beta is None or 0.0 <= beta < 1.0, "model.ema.beta", f"must be in [0, 1), got {beta}")
        require(half_life_images is None or half_life_images > 0, "model.ema.half_life_images",
                f"must be > 0, got {half_life_images}")
        require(rampup is None or (half_life_images is not None and rampup > 0), "model.ema.rampup",
                f"must be > 0 and comes with half_life_images, got rampup={rampup}")
        self.beta = beta
        self.half_life_images = half_life_images
        self.rampup = rampup

    def beta_for(self, images_per_step: int, images_seen: int) -> float:
        """The decay of a step that generated ``images_per_step`` images (over all ranks), ``images_seen``
        counting this step's."""
        if self.beta is not None:
            return self.beta
        half_life = self.half_life_images
        if self.rampup is not None:
            half_life = min(half_life, self.rampup * images_seen)
        return 0.5 ** (images_per_step / half_life)

    @staticmethod
    def copy_of(net: nn.Module) -> nn.Module:
        """The average's starting point: a copy of ``net`` that no optimizer or backward pass will touch."""
        return copy.deepcopy(net).requires_grad_(False)

    @torch.no_grad()
    def update(self, average: nn.Module, net: nn.Module, images_per_step: int, images_seen: int) -> None:
        weight = 1.0 - self.beta_for(images_per_step, images_seen)
        for avg, param in zip(average.parameters(), net.parameters(), strict=True):
            avg.lerp_(param.detach(), weight)
        # Running statistics are already averages of recent batches; averaging them again would lag.
        for avg, buffer in zip(average.buffers(), net.buffers(), strict=True):
            avg.copy_(buffer)

    def __repr__(self) -> str:
        if self.beta is not None:
            return f"EMA(beta={self.beta})"
        return f"EMA(half_life_images={self.half_life_images}, rampup={self.rampup})"
