"""Data-parallel training of a GAN: each net in its own DistributedDataParallel.

Lightning's DDPStrategy wraps the whole LightningModule in one DDP. A GAN's D update back-propagates
into D only and its G update into G only, so that single reducer waits for gradients that never come
("unused parameters"), unless ``find_unused_parameters=True`` makes it walk the autograd graph after
every backward. Wrapping G and D separately gives each update a reducer whose parameters all receive
gradients: no graph walk, and the all-reduce still overlaps the backward pass.
"""

from __future__ import annotations

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.strategies import DDPStrategy

from parti_exp.protocols import DistributesNets


def seed_per_rank(trainer: Trainer) -> None:
    """Give each rank its own random stream from the run's seed.

    seed_everything gives every rank the same seed: without an offset all ranks would draw the same latents,
    penalty weights, caption templates and dropout masks, so the global batch would repeat each draw
    world_size times.
    """
    if trainer.world_size > 1:
        torch.manual_seed(torch.initial_seed() + trainer.global_rank)


class PerNetDDPStrategy(DDPStrategy):
    """DDPStrategy for modules with ``distribute(wrap)`` (the adversarial ones); any other module gets plain DDP."""

    def configure_ddp(self) -> None:
        module = self.model
        if not isinstance(module, DistributesNets):
            super().configure_ddp()
            return
        if self._ddp_comm_hook is not None or self._model_averaging_period is not None:
            raise ValueError("PerNetDDPStrategy does not support DDP communication hooks or model averaging")
        # _setup_model builds one DistributedDataParallel with this strategy's device ids and ddp kwargs;
        # here it is applied to each net instead of the whole LightningModule.
        module.distribute(self._setup_model)

    def teardown(self) -> None:
        module = self.lightning_module
        if isinstance(module, DistributesNets):
            module.distribute(None)
        super().teardown()
