"""A full disk or a read-only checkpoint directory stops the run with a message, and the previous checkpoint
stays loadable. Both are real file systems: a tiny tmpfs, and a read-only bind mount (mounting needs root, as
on this project's CI; where it is refused the tests skip and say so)."""

import re
import subprocess

import pytest
import torch

from parti_exp.runtime.checkpoints import CheckpointWriteError, read_checkpoint
from parti_exp.train import train

RUN = ["trainer.limit_train_batches=5", "trainer.limit_val_batches=1", "callbacks.model_checkpoint.every_n_g_steps=2"]


def mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a test file system here (mount {' '.join(args)}: {result.stderr.strip()})")


@pytest.fixture
def mounted(tmp_path):
    points = []

    def make(*args: str, at):
        at.mkdir(parents=True, exist_ok=True)
        mount(*args, str(at))
        points.append(at)
        return at

    yield make
    for point in reversed(points):
        subprocess.run(["umount", str(point)], check=False)


def checkpoint_size(cfg_factory, tmp_path) -> int:
    train(cfg_factory(*RUN, f"paths.output_dir={tmp_path / 'probe'}", "trainer.limit_train_batches=2"))
    return (tmp_path / "probe" / "checkpoints" / "last.ckpt").stat().st_size


def test_full_disk_stops_the_run_and_keeps_the_previous_checkpoint(cfg_factory, tmp_path, mounted):
    size = checkpoint_size(cfg_factory, tmp_path)
    # Room for one checkpoint, not for the temporary copy of the next one beside it.
    disk = mounted("-t", "tmpfs", "-o", f"size={int(size * 1.5)}", "tmpfs", at=tmp_path / "small_disk")
    with pytest.raises(CheckpointWriteError, match=r"could not write the checkpoint .*last.ckpt \(No space left on "
                                                   r"device\); the previous last.ckpt is intact") as raised:
        train(cfg_factory(*RUN, f"callbacks.model_checkpoint.dirpath={disk}"))
    # Which file system, and its free space against what the checkpoint needed.
    assert re.search(rf"The file system mounted at {re.escape(str(disk))} has [0-9.]+ MiB free; this checkpoint "
                     r"needs [0-9.]+ MiB", str(raised.value))
    assert sorted(p.name for p in disk.iterdir()) == ["last.ckpt"], "no partial file left behind"
    assert read_checkpoint(disk / "last.ckpt")["gan_steps"]["g_step"] == 2


def test_read_only_checkpoint_directory_stops_the_run_and_keeps_the_previous_checkpoint(
    cfg_factory, tmp_path, mounted
):
    writable = tmp_path / "checkpoints"
    train(cfg_factory(*RUN, f"callbacks.model_checkpoint.dirpath={writable}", "trainer.limit_train_batches=2"))
    before = torch.load(writable / "last.ckpt", weights_only=False)["state_dict"]
    read_only = mounted("--bind", "-o", "ro", str(writable), at=tmp_path / "read_only")
    with pytest.raises(CheckpointWriteError, match=r"\(Read-only file system\); the previous last.ckpt is intact. "
                                                   r"Free disk space or make the directory writable"):
        # Without the version counter the run writes last.ckpt again, as a resumed run in its own directory does.
        train(cfg_factory(*RUN, f"callbacks.model_checkpoint.dirpath={read_only}",
                          "+callbacks.model_checkpoint.enable_version_counter=false"))
    after = read_checkpoint(read_only / "last.ckpt")["state_dict"]
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_the_last_epoch_keeps_its_checkpoint_when_a_step_save_falls_on_its_last_batch(cfg_factory, tmp_path):
    # 4 batches per epoch, one G step each: the step save at G step 8 is the second epoch's last batch.
    train(cfg_factory("trainer.max_epochs=2", "trainer.limit_train_batches=4", "trainer.limit_val_batches=0",
                      "callbacks.model_checkpoint.every_n_g_steps=4"))
    saved = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("*.ckpt"))
    assert saved == ["epoch_0001.ckpt", "last.ckpt"]
    assert read_checkpoint(tmp_path / "run" / "checkpoints" / "epoch_0001.ckpt")["gan_steps"]["g_step"] == 8
