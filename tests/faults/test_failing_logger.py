"""TensorBoard and W&B raising in log_metrics mid-run: the run trains to its end, the CSV logger keeps every row,
each failure is warned about once, and W&B goes on offline with the `wandb sync` command in the warning."""

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra_compose import subprocess_env

TINY = ["model=dcgan", "trainer.max_epochs=2", "trainer.limit_train_batches=4", "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false", "trainer.cpu_threads=1",
        "model.generator.width=8", "model.discriminator.width=8", "metrics=none"]


@pytest.mark.slow
def test_loggers_failing_mid_run_do_not_end_the_run(tmp_path):
    run_dir = tmp_path / "run"
    env = subprocess_env()
    env.pop("WANDB_MODE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", "parti_exp.train", "logger=many", "logger.wandb.offline=true",
         "logger.tensorboard._target_=failing_logger_classes.TensorBoardDiskGone",
         "logger.wandb._target_=failing_logger_classes.WandbServerGone",
         *TINY, f"hydra.run.dir={run_dir}", f"paths.root_dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stderr + result.stdout
    assert log.count("the TensorBoardDiskGone logger failed in log_metrics (OSError: [Errno 5] Input/output error") == 1
    switched = re.findall(r"W&B failed in log_metrics \(ConnectionError: .*?\): the run goes on, logging to W&B "
                          r"offline; upload it into the same W&B run when the server is reachable with "
                          r"`wandb sync --id (\w+) (\S+)`", log)
    assert len(switched) == 1, log[-3000:]
    online_id, offline_dir = switched[0]
    assert list(Path(offline_dir).glob("run-*.wandb")), "the offline run the warning names holds the records"
    assert online_id not in offline_dir, "the online run's id, which sync uploads into"
    # The run went to its end, and the CSV logger has a row for every step of it.
    # (torch.load: the stored config names this file's test loggers, which the allow-list refuses to build.)
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["gan_steps"]["g_step"] == 8
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        steps = {int(row["step"]) for row in csv.DictReader(file) if row.get("train/g_loss")}
    assert len(steps) == 8
