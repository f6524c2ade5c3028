"""Run by test_ddp_equivalence.py as `python ddp_record_job.py OUT_DIR OVERRIDE...`: trains on
trainer=ddp_sim (Lightning re-launches this script for rank 1) and saves, per rank, the final
parameters and buffers, every random draw the training step made and the indices of every real batch, so that a
1-process run can replay exactly the same global batches."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import seed_everything

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hydra_compose import compose_train  # noqa: E402

from parti_exp.builders import build_datamodule, build_module, build_trainer  # noqa: E402
from parti_exp.data.base import UInt8ImageDataset  # noqa: E402

DRAWS: list[torch.Tensor] = []
BATCHES: list[np.ndarray] = []


def recording(sample):
    """Wrap torch.randn / torch.rand: keep every draw from the global generator (the training step's)."""

    def draw(*args, **kwargs):
        out = sample(*args, **kwargs)
        if kwargs.get("generator") is None:
            DRAWS.append(out.detach().clone())
        return out

    return draw


def main(out_dir: Path, overrides: list[str]) -> None:
    original_getitems = UInt8ImageDataset.__getitems__

    def getitems(self, indices):
        BATCHES.append(np.sort(np.asarray(indices)))
        return original_getitems(self, indices)

    UInt8ImageDataset.__getitems__ = getitems
    cfg = compose_train(out_dir, "trainer=ddp_sim", *overrides)
    seed_everything(cfg.seed)
    datamodule, module = build_datamodule(cfg), build_module(cfg)
    trainer = build_trainer(cfg, [], [])
    torch.randn, torch.rand = recording(torch.randn), recording(torch.rand)
    trainer.fit(module, datamodule=datamodule)
    params = {k: v.detach().clone() for k, v in module.named_parameters()}
    buffers = {k: v.detach().clone() for k, v in module.named_buffers()}
    torch.save(
        {"params": params, "buffers": buffers, "draws": DRAWS, "batches": BATCHES,
         "steps": (module.d_step, module.g_step)},
        out_dir / f"rank{trainer.global_rank}.pt",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
