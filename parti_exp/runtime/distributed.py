"""Data-parallel training of a GAN: each net in its own DistributedDataParallel.

Lightning's DDPStrategy wraps the whole LightningModule in one DDP. A GAN's D update back-propagates
into D only and its G update into G only, so that single reducer waits for gradients that never come
("unused parameters"), unless ``find_unused_parameters=True`` makes it walk the autograd graph after
every backward. Wrapping G and D separately gives each update a reducer whose parameters all receive
gradients: no graph walk, and the all-reduce still overlaps the backward pass.

Under torchrun, the process group meets in the store the elastic agent serves (``TORCHELASTIC_USE_AGENT_STORE``),
at the same address for every attempt of the group: torch's ``env://`` rendezvous connects to it without a prefix, so
the workers of a restarted group find the keys of the group that died. Gloo then reads a dead worker's address and
fails (``Gloo connectFullMesh failed ... Connection refused``) whenever a rank looks before its peer has written its
new one, as the restarted run's rank 1 does while rank 0 is still loading. ``PerNetDDPStrategy`` meets in a part of
that store of its own attempt (``/worker/attempt_<TORCHELASTIC_RESTART_COUNT>/``, the prefix torch itself used
before 2.4).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import torch
import torch.distributed as dist
from lightning.pytorch import Trainer
from lightning.pytorch.strategies import DDPStrategy

from parti_exp.protocols import DistributesNets

log = logging.getLogger(__name__)


def seed_per_rank(trainer: Trainer) -> None:
    """Give each rank its own random stream from the run's seed.

    seed_everything gives every rank the same seed: without an offset all ranks would draw the same latents,
    penalty weights, caption templates and dropout masks, so the global batch would repeat each draw
    world_size times.
    """
    if trainer.world_size > 1:
        torch.manual_seed(torch.initial_seed() + trainer.global_rank)


def accelerator_is_gpu(accelerator: str) -> bool:
    """Whether ``trainer.accelerator`` (``auto``, ``gpu``, ``cuda``, ``cpu``, ...) puts this run on a CUDA GPU."""
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def elastic_attempt_store(world_size: int, timeout: timedelta) -> dist.Store | None:
    """The elastic agent's store, seen through this attempt's prefix, for a worker started by torchrun; else None."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size, is_master=False,
                          timeout=timeout)
    return dist.PrefixStore(f"/worker/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/", store)


class PerNetDDPStrategy(DDPStrategy):
    """DDPStrategy for modules with ``distribute(wrap)`` (the adversarial ones); any other module gets plain DDP.
    Under torchrun its process group meets in a store of its own attempt (``elastic_attempt_store``)."""

    def setup_distributed(self) -> None:
        self.set_world_ranks()
        store = elastic_attempt_store(self.world_size, self._timeout)
        if store is not None and not dist.is_initialized():
            backend = self._get_process_group_backend()
            log.info("process group (%s) of torchrun attempt %s", backend,
                     os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
            dist.init_process_group(backend, store=store, rank=self.global_rank, world_size=self.world_size,
                                    timeout=self._timeout,
                                    device_id=self.root_device if self.root_device.type != "cpu" else None)
        # Lightning's own setup: world ranks and backend recorded; the group, when formed above, is kept.
        super().setup_distributed()

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
