"""A checkpoint damaged on disk after training, met as a user meets it: `sample` refuses it, naming the file, what is
wrong and the intact checkpoint beside it; a resume with ckpt_path=last continues from that intact one."""

import logging

import pytest
from checkpoint_helpers import flip_tensor_bytes
from hydra_compose import run_entry_point

from parti_exp.runtime.checkpoints import read_checkpoint
from parti_exp.train import train

RUN = ["trainer.limit_train_batches=3", "trainer.limit_val_batches=1", "trainer.cpu_threads=1",
       "callbacks.sample_grid.num_samples=4"]


@pytest.mark.slow
def test_sample_refuses_a_bit_flipped_checkpoint_and_a_resume_skips_it(cfg_factory, tmp_path, caplog):
    train(cfg_factory(*RUN, "trainer.max_epochs=2", "callbacks.model_checkpoint.save_top_k=-1"))
    checkpoints = tmp_path / "run" / "checkpoints"
    last, epoch_1 = checkpoints / "last.ckpt", checkpoints / "epoch_0001.ckpt"
    # last.ckpt is refreshed after the epoch checkpoint: the newest is last.ckpt, then epoch_0001.ckpt
    flip_tensor_bytes(last)
    result = run_entry_point("parti_exp.sample", f"ckpt_path={last}", "n=4", "device=cpu",
                             f"out_dir={tmp_path / 'samples'}", f"paths.root_dir={tmp_path}", check=False)
    assert result.returncode == 1
    assert f"ckpt_path={last} is damaged: its content does not match the SHA-256 stored in it" in result.stderr
    assert f"the newest intact checkpoint of this run is {epoch_1}" in result.stderr
    assert not (tmp_path / "samples").exists(), "nothing drawn from wrong weights"
    # A resume asked to continue from last.ckpt takes the intact epoch_0001.ckpt, with a warning.
    with caplog.at_level(logging.WARNING):
        resumed = train(cfg_factory(*RUN, "trainer.max_epochs=3", "ckpt_path=last"))
    assert f"skipping the damaged checkpoint {last}" in caplog.text
    assert resumed.module.progress_step == 9
    assert read_checkpoint(last)["gan_steps"]["g_step"] == 9  # and last.ckpt is whole again
