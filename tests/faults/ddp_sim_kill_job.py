"""Run by test_lost_worker.py as `python ddp_sim_kill_job.py OUT_DIR KILL_AT OVERRIDE...`: one trainer=ddp_sim run
(Lightning re-launches this script for rank 1), whose rank 1 SIGKILLs itself after G step KILL_AT."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hydra_compose import compose_train  # noqa: E402
from lightning.pytorch import Callback  # noqa: E402

from parti_exp.train import train  # noqa: E402


class KillRankOne(Callback):
    def __init__(self, kill_at: int) -> None:
        self.kill_at = kill_at

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_rank == 1 and pl_module.progress_step == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    out_dir, kill_at, overrides = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    train(compose_train(out_dir, "trainer=ddp_sim", *overrides), [KillRankOne(kill_at)])
