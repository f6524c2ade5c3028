"""A real SIGTERM sent to a running `python -m parti_exp.train`: it saves, says where, exits 0; the run then
resumes from what it saved."""

import signal
import subprocess
import sys
import time

import pytest
from hydra_compose import REPO_ROOT, run_entry_point, subprocess_env

from parti_exp.runtime.checkpoints import read_checkpoint

ARGS = [
    "experiment=quickstart",
    "model=dcgan",  # the cheapest nets: the test is about the signal, not the model
    "metrics=none",
    "trainer.limit_train_batches=20",  # of the 25 batches of 64 digits
    "trainer.limit_val_batches=1",
    "trainer.enable_progress_bar=false",
    "callbacks.model_checkpoint.every_n_g_steps=2",
]


@pytest.mark.slow
def test_sigterm_saves_exits_cleanly_and_the_run_resumes(tmp_path):
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(
        [sys.executable, "-m", "parti_exp.train", *ARGS, "trainer.max_epochs=100", f"hydra.run.dir={run_dir}"],
        cwd=REPO_ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 240
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # the first step checkpoint: training is under way
    assert process.poll() is None, process.communicate()[1][-3000:]
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=240)
    output = stdout + stderr  # Hydra's job logging writes to stdout, Lightning's to stderr

    assert process.returncode == 0, output[-3000:]
    saved = read_checkpoint(last)
    g_step = saved["gan_steps"]["g_step"]
    assert f"received SIGTERM: saved {last} at G step {g_step} and stopped; resume with ckpt_path={last}" in output
    assert 0 < g_step < 100 * 20

    # Resume in the same run directory and finish the epoch the signal interrupted (and one more).
    epochs_done = saved["epoch"]
    result = run_entry_point(
        "parti_exp.train", *ARGS, f"trainer.max_epochs={epochs_done + 2}", f"hydra.run.dir={run_dir}", "ckpt_path=last"
    )
    assert f"Restoring states from the checkpoint path at {last}" in result.stdout + result.stderr
    resumed = read_checkpoint(last)
    assert resumed["epoch"] == epochs_done + 1  # 0-based index of the last finished epoch
    assert resumed["gan_steps"]["g_step"] == (epochs_done + 2) * 20
