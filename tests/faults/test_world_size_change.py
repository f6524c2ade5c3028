"""Resuming on another number of processes: the rest of the interrupted epoch is re-sharded over the new ranks, so no
item of it is served twice and none is lost but the few that do not fill a step of every rank; each rank that both
runs have continues its random streams."""

import subprocess
import sys
from pathlib import Path

import pytest
from hydra_compose import REPO_ROOT, subprocess_env

from parti_exp.data.epoch_sampler import EpochShardSampler
from parti_exp.runtime.checkpoints import read_checkpoint

JOB = Path(__file__).parent.parent / "runtime" / "ddp_resume_job.py"


def epoch_of(world: int, items_done: int = 0, num_items: int = 103, epoch: int = 2) -> list[list[int]]:
    shards = [EpochShardSampler(num_items, shuffle=True, seed=5, rank=r, world_size=world) for r in range(world)]
    for sampler in shards:
        sampler.resume_at(epoch, items_done)
    return [list(sampler) for sampler in shards]


@pytest.mark.parametrize("before,after", [(2, 1), (1, 2), (2, 3), (4, 2)])
def test_the_rest_of_an_interrupted_epoch_is_served_once_on_another_number_of_processes(before, after):
    batch, batches_done = 4, 3
    full = epoch_of(before)
    consumed = [i for shard in full for i in shard[: batch * batches_done]]
    rest = epoch_of(after, items_done=len(consumed))
    served = [i for shard in rest for i in shard]
    assert len(set(consumed) | set(served)) == len(consumed) + len(served), "no item twice"
    assert 103 - len(consumed) - len(served) < after, "only the items that do not fill every rank's shard are left"
    assert len({len(shard) for shard in rest}) == 1, "every rank makes the same number of steps"


def test_the_same_number_of_processes_continues_each_shard_exactly():
    full = epoch_of(3)
    assert epoch_of(3, items_done=3 * 7) == [shard[7:] for shard in full]


def job(out_dir: Path, interrupt_at: int, *extra: str) -> subprocess.CompletedProcess:
    run = ["model=wgan_gp", "trainer.max_epochs=1", "trainer.limit_val_batches=1", "data.batch_size=256",
           "callbacks.sample_grid.num_samples=4", "trainer.cpu_threads=1"]
    result = subprocess.run([sys.executable, str(JOB), str(out_dir), str(interrupt_at), *run, *extra], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300, env=subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_a_two_process_checkpoint_resumes_on_one_process(tmp_path):
    # 1617 digits, 256 a batch: 3 steps per rank with 2 processes (1536 items), 6 with one.
    job(tmp_path, 2)  # interrupted after D step 2 on both ranks: 1024 items consumed
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    position = read_checkpoint(last)["DigitsDataModule"]  # Lightning stores a DataModule's state under its class
    assert position == {"epoch": 0, "batches_done": 2, "items_done": 1024, "world_size": 2}
    resumed = job(tmp_path, 0, "trainer.devices=1", "ckpt_path=last")
    assert "the checkpoint was written by 2 processes, this run has 1" in resumed.stderr
    # The rest of the epoch on one process: (1617 - 1024) // 256 = 2 more steps, none of the consumed items again.
    assert read_checkpoint(last)["gan_steps"]["d_step"] == 4


@pytest.mark.slow
def test_a_one_process_checkpoint_resumes_on_two_processes(tmp_path):
    job(tmp_path, 3, "trainer.devices=1")  # after 3 of the 6 steps of one process: 768 items consumed
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last)["DigitsDataModule"]["items_done"] == 768
    resumed = job(tmp_path, 0, "ckpt_path=last")
    assert "the checkpoint was written by 1 processes, this run has 2" in resumed.stderr
    # The rest, 849 items, over two ranks: one more step of 256 on each (Lightning's count of the epoch's steps done
    # is that of two processes now, 3 batches of 512 items -> 1, so the epoch is not over before its rest is served).
    assert read_checkpoint(last)["gan_steps"]["d_step"] == 4
