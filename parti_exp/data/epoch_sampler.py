"""The order in which a rank visits a dataset: a pure function of (seed, epoch, rank, world size).

Exact resume needs the data order to be reproducible from a checkpoint. torch's RandomSampler draws its
permutation from the global RNG when an epoch's iterator is created, and Lightning creates that iterator
at a different moment in a resumed run than in an uninterrupted one; a DistributedSampler is seeded, but
cannot start in the middle of an epoch. This sampler is both: it shuffles with its own generator seeded by
``seed + epoch``, shards the permutation over the ranks of the process group, and can be told to start a
given epoch after the batches a checkpoint had already consumed.

The ranks' shards interleave (rank ``r`` takes positions ``r, r + W, r + 2W, ...`` of the permutation), so what all
ranks have consumed after ``k`` items each is the permutation's first ``k * W`` items, whatever ``W`` was. A resume
starts the epoch's rest after that prefix and shards it over the ranks of the resumed run: with the same number of
processes each rank continues its own shard exactly; with another number, no item of the interrupted epoch is
served twice, and none is left out but the last few that do not fill a step of every rank (fewer than
``world size * batch size``, as at every epoch's end).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


def process_group_rank_and_size() -> tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) when there is none."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochShardSampler(Sampler[int]):
    """Indices of this rank's shard of one epoch, optionally shuffled, resumable mid-epoch.

    Every rank gets ``len(dataset) // world_size`` indices (the remainder of the permutation is left out, so
    all ranks make the same number of steps). ``seed`` defaults to Lightning's ``PL_GLOBAL_SEED``, which
    ``seed_everything`` sets on every rank alike.
    """

    def __init__(
        self,
        num_items: int,
        shuffle: bool,
        seed: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if num_items < 1:
            raise ValueError(f"cannot sample from an empty dataset (num_items={num_items})")
        self.num_items = num_items
        self.shuffle = shuffle
        self.seed = int(os.environ.get("PL_GLOBAL_SEED", 0)) if seed is None else seed
        # None: read from the process group when an epoch starts (DDP initialises it after the loader is built).
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch."""
        self.epoch = epoch

    def resume_at(self, epoch: int, items_done: int) -> None:
        """The next iteration serves the rest of ``epoch`` after the ``items_done`` items that all ranks together
        had consumed (once)."""
        self._resume = (epoch, items_done)

    def _rank_and_size(self) -> tuple[int, int]:
        rank, size = process_group_rank_and_size()
        return (rank if self.rank is None else self.rank), (size if self.world_size is None else self.world_size)

    def epoch_indices(self, epoch: int, items_done: int = 0) -> torch.Tensor:
        """This rank's indices for ``epoch``, in order, after the first ``items_done`` of all ranks together."""
        rank, size = self._rank_and_size()
        if self.shuffle:
            order = torch.randperm(self.num_items, generator=torch.Generator().manual_seed(self.seed + epoch))
        else:
            order = torch.arange(self.num_items)
        rest = order[items_done:]
        return rest[: len(rest) // size * size][rank::size]

    def __iter__(self) -> Iterator[int]:
        epoch, items_done = self._resume if self._resume is not None else (self.epoch, 0)
        self._resume = None
        self.epoch = epoch
        yield from self.epoch_indices(epoch, items_done).tolist()

    def __len__(self) -> int:
        return self.num_items // self._rank_and_size()[1]
