"""Run in two gloo processes by test_metric_values.py: FeatureMetrics under DDP (a module of its own so the
spawned processes can import it)."""

from __future__ import annotations

import torch
import torch.distributed as dist

from parti_exp.metrics.feature_metrics import FID_REAL_STATES, FeatureMetrics
from parti_exp.metrics.prdc import real_state

KWARGS = dict(is_splits=2, kid_subsets=3, kid_subset_size=8, prdc=True, class_share=True)
NUM_REAL_KNN = 30  # fewer than the 40 real rows: a subset


def all_values(metrics: FeatureMetrics) -> dict[str, float]:
    """compute() and the class shares (as ``share_<class>``), every rank taking part."""
    shares = {f"share_{i}": float(share) for i, share in enumerate(metrics.class_shares())}
    return {**metrics.compute(), **shares}


class Identity(torch.nn.Module):
    """An 'extractor' whose inputs are already the features (and the logits)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.feature_dim = self.num_logits = dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x


def run(rank: int, world: int, init_file: str, real: torch.Tensor, fake: torch.Tensor, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        kwargs = KWARGS
        # Cache hit: rank 0 holds the real statistics, the others none.
        cached = FeatureMetrics(Identity(real.shape[1]), **kwargs)
        single = FeatureMetrics(Identity(real.shape[1]), **kwargs)
        single.update(real, real=True)
        # Read the states directly: gathered_real_state() is a collective, and only rank 0 loads here.
        state = {name: getattr(single.fid, name) for name in FID_REAL_STATES}
        state["kid_real_features"] = real
        cached.load_real_state(state if rank == 0 else None)
        # Cache miss: every rank extracts its shard; the gathered state is the whole split's.
        sharded = FeatureMetrics(Identity(real.shape[1]), **kwargs)
        sharded.update(real[rank::world], real=True)
        gathered = sharded.gathered_real_state()
        for metrics in (cached, sharded):
            # The real kNN subset is not gathered: every rank installs all of it.
            metrics.prdc.set_real(real_state(real.float(), NUM_REAL_KNN))
            metrics.update(fake.chunk(world)[rank], real=False)
        results = {"cached": all_values(cached), "sharded": all_values(sharded), "gathered": gathered}
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()
