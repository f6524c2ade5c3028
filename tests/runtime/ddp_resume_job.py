"""Run by test_ddp_resume.py as `python ddp_resume_job.py OUT_DIR INTERRUPT_AT OVERRIDE...`: one training run on
trainer=ddp_sim (Lightning re-launches this script for rank 1). With INTERRUPT_AT > 0 every rank sends itself
SIGUSR1 after that D step, as a cluster's preemption notice would, and the run saves and stops."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hydra_compose import compose_train  # noqa: E402

from parti_exp.models.gan.module import GANModule  # noqa: E402
from parti_exp.train import train  # noqa: E402


def main(out_dir: Path, interrupt_at: int, overrides: list[str]) -> None:
    if interrupt_at > 0:
        original = GANModule.training_step

        def training_step(self, batch, batch_idx):
            result = original(self, batch, batch_idx)
            if self.d_step == interrupt_at:
                os.kill(os.getpid(), signal.SIGUSR1)
            return result

        GANModule.training_step = training_step
    train(compose_train(out_dir, "trainer=ddp_sim", *overrides))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:])
