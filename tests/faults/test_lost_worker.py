"""trainer=ddp_sim with a worker killed by SIGKILL: the surviving process stops at once with a message naming the
newest intact checkpoint and the command that continues from it, instead of waiting or a backend traceback."""

import subprocess
import sys
from pathlib import Path

import pytest
from hydra_compose import REPO_ROOT, subprocess_env

from parti_exp.runtime.checkpoints import read_checkpoint

JOB = Path(__file__).with_name("ddp_sim_kill_job.py")


@pytest.mark.slow
def test_a_dead_ddp_sim_worker_stops_the_run_with_a_message(tmp_path):
    command = [sys.executable, str(JOB), str(tmp_path), "3", "trainer.cpu_threads=1", "trainer.limit_train_batches=5",
               "data.batch_size=16", "callbacks.model_checkpoint.every_n_g_steps=2",
               "callbacks.sample_grid.num_samples=4"]
    env = {**subprocess_env(), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode != 0
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert "LostWorkerError: another process of this training group died" in result.stderr, result.stderr[-3000:]
    assert f"the newest intact checkpoint is {last}" in result.stderr
    assert f"ckpt_path=auto hydra.run.dir={tmp_path / 'run'}" in result.stderr
    assert read_checkpoint(last)["gan_steps"]["g_step"] == 2  # what a resume continues from


def test_only_a_lost_peer_of_a_group_is_reported_as_one(tmp_path):
    from parti_exp.runtime.lost_worker import lost_worker_error

    gone = RuntimeError("[pair.cc:545] Read error [127.0.0.1]:21424: Connection reset by peer. This is typically ...")
    assert lost_worker_error(gone, tmp_path, world_size=2) is not None
    assert lost_worker_error(gone, tmp_path, world_size=1) is None  # no group: some other connection
    assert lost_worker_error(RuntimeError("CUDA out of memory"), tmp_path, world_size=2) is None
    assert "no checkpoint was written yet" in str(lost_worker_error(gone, tmp_path, world_size=2))
