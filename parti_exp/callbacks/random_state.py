"""Every random number generator training draws from, saved in each checkpoint and restored on resume.

Latents, gradient-penalty interpolation weights, flips and DiffAugment all come from the global RNGs. A
resumed run continues bit for bit only if those generators continue where they were when the checkpoint
was written; Lightning does not save them. Each rank draws its own stream (the GANModule offsets the seed
per rank), so the states of all ranks are gathered and each rank gets its own back.

Resumed with another number of processes, rank ``r`` gets the states of the checkpoint's rank ``r`` where it had one;
a rank the checkpoint had not (more processes now) keeps the stream it was seeded with at start (the run's seed
plus its rank); the states of the checkpoint's ranks beyond this run's are dropped. That continues rank 0's stream
(and every stream both runs share) exactly; what the new and dropped ranks draw is not what either run would have.
"""

from __future__ import annotations

import logging
import random

import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch import Callback, LightningModule, Trainer

log = logging.getLogger(__name__)


def collect_rng_states() -> dict:
    """This process's torch (CPU and every CUDA device), numpy and python RNG states."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        # As tensors and plain numbers: Lightning loads checkpoints with torch.load(weights_only=True).
        "numpy": numpy_state_to_plain(np.random.get_state()),
        "python": random.getstate(),
    }


def numpy_state_to_plain(state: tuple) -> dict:
    kind, keys, position, has_gauss, cached_gaussian = state
    return {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}


def numpy_state_from_plain(state: dict) -> tuple:
    keys = state["keys"].numpy().astype(np.uint32)
    return state["kind"], keys, state["position"], state["has_gauss"], state["cached_gaussian"]


def restore_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    np.random.set_state(numpy_state_from_plain(states["numpy"]))
    random.setstate(states["python"])


class RandomStateCheckpoint(Callback):
    def __init__(self) -> None:
        self._loaded: list[dict] | None = None

    def state_dict(self) -> dict:
        states = collect_rng_states()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # Checkpoints are written by rank 0, but every rank takes part in state_dict(): gather here.
            gathered: list[dict | None] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, states)
            return {"per_rank": gathered}
        return {"per_rank": [states]}

    def load_state_dict(self, state_dict: dict) -> None:
        self._loaded = state_dict.get("per_rank")

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # The last hook before the first resumed batch: everything that draws while the run is set up (the
        # DDP seed offset in on_fit_start, dataloader creation) has already happened.
        if self._loaded is None:
            return
        saved = len(self._loaded)
        if saved != trainer.world_size and trainer.global_rank == 0:
            log.warning(
                "the checkpoint was written by %d processes, this run has %d: each rank below %d continues its random "
                "streams, %s; the data of the interrupted epoch is re-sharded over the %d processes. The run goes on "
                "from the same weights and data position, but not bit for bit as either number of processes would "
                "have (docs/reliability.md)", saved, trainer.world_size, min(saved, trainer.world_size),
                f"ranks {saved}..{trainer.world_size - 1} start from their seeds" if trainer.world_size > saved
                else f"the streams of ranks {trainer.world_size}..{saved - 1} are dropped", trainer.world_size)
        if trainer.global_rank < saved:
            restore_rng_states(self._loaded[trainer.global_rank])
        self._loaded = None
