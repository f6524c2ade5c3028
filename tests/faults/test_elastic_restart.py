"""A worker killed with SIGKILL mid-epoch under `torchrun --max-restarts 1`: torchrun restarts the group, the group
resumes from the run's newest checkpoint by itself, and the run ends with the weights of the run left alone."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from checkpoint_helpers import assert_same_training_state
from hydra_compose import REPO_ROOT, subprocess_env

from parti_exp.runtime.checkpoints import read_checkpoint

JOB = Path(__file__).with_name("elastic_job.py")
TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent))
RUN = [
    "trainer.accelerator=cpu",  # the process group's backend follows it: gloo
    "trainer.cpu_threads=1",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=5",
    "trainer.limit_val_batches=1",
    "trainer.deterministic=true",
    "data.batch_size=16",
    "callbacks.sample_grid.num_samples=4",
    "callbacks.model_checkpoint.every_n_g_steps=2",
]


def elastic_job(out_dir: Path, kill_at: int) -> subprocess.CompletedProcess:
    command = [TORCHRUN, "--standalone", "--nproc-per-node", "2", "--max-restarts", "1", str(JOB), str(out_dir),
               str(kill_at), *RUN]
    env = {**subprocess_env(), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def max_weight_difference(a: dict, b: dict) -> float:
    return max((a[key].float() - b[key].float()).abs().max().item() for key in a)


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_the_run_ends_as_the_run_left_alone(tmp_path):
    elastic_job(tmp_path / "alone", 0)
    killed = elastic_job(tmp_path / "killed", 3)  # G step 3 of epoch 0's 5; last.ckpt was written at G step 2
    record = json.loads((tmp_path / "killed" / "fault.json").read_text())
    assert record["attempt"] == 1, killed.stderr[-2000:]
    assert record["resumed_g_step"] == 2  # the step checkpoint before the kill: one G step recomputed
    assert "torchrun restarted this worker group (restart 1): resuming with ckpt_path=auto" in killed.stderr
    alone = read_checkpoint(tmp_path / "alone" / "run" / "checkpoints" / "last.ckpt")
    resumed = read_checkpoint(tmp_path / "killed" / "run" / "checkpoints" / "last.ckpt")
    assert resumed["gan_steps"] == alone["gan_steps"] and resumed["gan_steps"]["g_step"] == 10
    assert_same_training_state(alone, resumed)
    difference = max_weight_difference(alone["state_dict"], resumed["state_dict"])
    print(f"G steps recomputed: {record['killed_after_g_step'] - record['resumed_g_step']}; "
          f"kill to resumed training: {record['resumed_at'] - record['killed_at']:.1f} s; "
          f"max abs weight difference vs the run left alone: {difference:.3g}")
    assert difference == 0.0  # CPU, deterministic: bit for bit
