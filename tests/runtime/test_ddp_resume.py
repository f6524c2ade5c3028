"""Exact resume under DDP (trainer=ddp_sim, 2 processes): each rank gets its own RNG states back and its own
shard of the interrupted epoch from where it stopped, so the resumed run ends where the uninterrupted one does."""

import subprocess
import sys
from pathlib import Path

import pytest
from checkpoint_helpers import assert_same_training_state
from hydra_compose import REPO_ROOT, subprocess_env

from parti_exp.runtime.checkpoints import read_checkpoint

JOB = Path(__file__).with_name("ddp_resume_job.py")
RUN = [
    "model=wgan_gp",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=5",
    "trainer.limit_val_batches=1",
    "trainer.deterministic=true",
    "data.batch_size=16",
    "callbacks.sample_grid.num_samples=4",
]


def job(out_dir: Path, interrupt_at: int, *extra: str) -> None:
    result = subprocess.run(
        [sys.executable, str(JOB), str(out_dir), str(interrupt_at), *RUN, *extra],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=subprocess_env(),
    )
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.mark.slow
def test_ddp_run_interrupted_mid_epoch_and_resumed_equals_the_uninterrupted_run(tmp_path):
    job(tmp_path / "full", 0)
    job(tmp_path / "cut", 3)  # D step 3 of the 5 in epoch 0, on both ranks
    last = tmp_path / "cut" / "run" / "checkpoints" / "last.ckpt"
    saved = read_checkpoint(last)
    assert saved["gan_steps"]["d_step"] == 3
    assert len(saved["callbacks"]["RandomStateCheckpoint"]["per_rank"]) == 2
    job(tmp_path / "cut", 0, "ckpt_path=last")
    assert_same_training_state(
        read_checkpoint(tmp_path / "full" / "run" / "checkpoints" / "last.ckpt"), read_checkpoint(last)
    )
