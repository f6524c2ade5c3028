"""DDP on trainer=ddp_sim (2 CPU processes, gloo) must train exactly like one process over the same
global batch: after k steps G and D are identical on both ranks and equal, within float tolerance, to a
1-process run that replays the same real images and the same random draws.

Batch norm: without SyncBatchNorm (GPU-only in torch) every rank normalises with its own half of the
global batch, so the 1-process reference normalises each half separately (ghost batches) to compute the
same function. On GPUs, trainer=ddp turns on sync_batchnorm for global-batch statistics instead.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra_compose import REPO_ROOT, compose_train, subprocess_env
from lightning.pytorch import seed_everything
from torch import nn
from torch.utils.data import DataLoader

from parti_exp.builders import build_datamodule, build_module, build_trainer
from parti_exp.data.base import to_signed_unit

JOB = Path(__file__).with_name("ddp_record_job.py")
SMALL = [
    "model.generator.width=8",
    "model.discriminator.width=8",
    "data.batch_size=8",
    "trainer.limit_val_batches=0",
    "trainer.max_epochs=1",
]


class GhostBatchNorm2d(nn.BatchNorm2d):
    """Batch norm with statistics per half-batch: what two DDP ranks without SyncBatchNorm compute."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        return torch.cat([super(GhostBatchNorm2d, self).forward(half) for half in x.chunk(2)])


def use_ghost_batch_norm(net: nn.Module) -> None:
    for module in net.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = GhostBatchNorm2d


def replaying(draws_by_rank: list[list[torch.Tensor]]):
    """Patched torch.randn and torch.rand that return, for the i-th call of either, the ranks' i-th
    draws stacked into one global draw (both ranks made the same sequence of calls)."""
    calls = iter(zip(*draws_by_rank))

    def replay(sample):
        def draw(*args, **kwargs):
            if kwargs.get("generator") is not None:
                return sample(*args, **kwargs)
            out = torch.cat(next(calls))
            assert out.shape == sample(*args, **kwargs).shape, "the replayed call sequence is misaligned"
            return out

        return draw

    return replay(torch.randn), replay(torch.rand)


def one_process_reference(tmp_path: Path, overrides: list[str], ranks: list[dict], k: int) -> dict:
    cfg = compose_train(tmp_path / "reference", "trainer=cpu", *overrides)
    seed_everything(cfg.seed)
    datamodule, module = build_datamodule(cfg), build_module(cfg)
    use_ghost_batch_norm(module)
    datamodule.setup()
    images, labels = datamodule.train_set.images, datamodule.train_set.labels
    batches = []
    for step in range(k):
        index = np.concatenate([rank["batches"][step] for rank in ranks])
        batches.append((to_signed_unit(torch.from_numpy(images[index])), torch.from_numpy(labels[index])))
    trainer = build_trainer(cfg, [], [])
    randn, rand = torch.randn, torch.rand
    torch.randn, torch.rand = replaying([rank["draws"] for rank in ranks])
    try:
        trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None))
    finally:
        torch.randn, torch.rand = randn, rand
    return {"params": dict(module.named_parameters()), "steps": (module.d_step, module.g_step)}


def run_ddp(tmp_path: Path, overrides: list[str]) -> list[dict]:
    out = tmp_path / "ddp"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, str(JOB), str(out), *overrides],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "model,k,steps",
    [
        ("wgan_gp", 6, (6, 1)),  # no batch norm in the critic; gradient penalty under DDP
        ("dcgan", 4, (4, 4)),  # batch norm in G and D
    ],
)
def test_ddp_sim_matches_one_process_over_the_global_batch(tmp_path, model, k, steps):
    overrides = [f"model={model}", f"trainer.limit_train_batches={k}", *SMALL]
    ranks = run_ddp(tmp_path, overrides)
    for rank in ranks:
        assert rank["steps"] == steps
        assert len(rank["batches"]) >= k
        # the ranks saw different real images (each its own shard) ...
    assert not set(ranks[0]["batches"][0]) & set(ranks[1]["batches"][0])
    # ... and drew different latents (a per-rank seed offset), yet hold identical nets
    assert not torch.equal(ranks[0]["draws"][0], ranks[1]["draws"][0])
    for name, value in ranks[0]["params"].items():
        assert torch.equal(value, ranks[1]["params"][name]), f"{name} differs between ranks"

    reference = one_process_reference(tmp_path, overrides, ranks, k)
    assert reference["steps"] == steps
    seed_everything(0)
    initial = build_module(compose_train(tmp_path / "init", f"model={model}", *SMALL))
    moved = 0.0
    for name, value in ranks[0]["params"].items():
        torch.testing.assert_close(value, reference["params"][name].detach(), rtol=1e-4, atol=1e-5, msg=name)
        moved = max(moved, (value - dict(initial.named_parameters())[name]).abs().max().item())
    assert moved > 1e-3  # training moved the weights: the comparison is not between two initial states


@pytest.mark.slow
def test_ada_adjusts_p_from_both_ranks_images_and_keeps_it_equal(tmp_path):
    # 3 adjustments, each by +-(8 + 8 images) / 160 = 0.1 when the ranks' sign counts are summed first; from one rank's
    # 8 images alone p would move by odd multiples of 0.05 instead, and could differ between the ranks.
    overrides = ["model=dcgan", "trainer.limit_train_batches=3", "augment=ada", "augment.pipeline.interval=1",
                 "augment.pipeline.speed_images=160", "augment.pipeline.initial_p=0.5", *SMALL]
    ranks = run_ddp(tmp_path, overrides)
    p = [float(rank["buffers"]["augment.p"]) for rank in ranks]
    assert p[0] == p[1]
    moves = (p[0] - 0.5) / 0.1
    assert abs(moves - round(moves)) < 1e-4 and round(moves) % 2 == 1
