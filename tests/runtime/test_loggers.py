"""Loggers: W&B offline (history, config, images), TensorBoard images, all under the run's own directory."""

import subprocess
import sys

import pytest
from hydra_compose import subprocess_env

# model=dcgan: the default model logs more series than W&B's closing report lists, and this test reads that report
TINY = [
    "model=dcgan",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=4",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "model.generator.width=8",
    "model.discriminator.width=8",
]


@pytest.mark.slow
def test_many_loggers_offline_write_history_config_and_images_into_the_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    env = subprocess_env()
    env.pop("WANDB_MODE", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "parti_exp.train",
            "logger=many",
            "logger.wandb.offline=true",
            *TINY,
            f"hydra.run.dir={run_dir}",
            f"paths.root_dir={tmp_path}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    # History: W&B's closing report lists every logged series with its last value.
    report = result.stderr[result.stderr.index("Run history:") :]
    for key in ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake", "val/d_real"):
        assert key in report, key
    # The run's record log holds the resolved config (the model's target) and the metric names.
    (record_log,) = wandb_run.glob("run-*.wandb")
    raw = record_log.read_bytes()
    assert b"parti_exp.models.gan.module.GANModule" in raw and b"train/d_loss" in raw
    # One sample grid per epoch as W&B media.
    assert len(list((wandb_run / "files" / "media" / "images").glob("samples_*.png"))) == 2
    # TensorBoard and CSV next to it, and nothing written to the directory the command ran from.
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert "n_critic" in (run_dir / "csv" / "hparams.yaml").read_text()
    assert not (tmp_path / "wandb").exists() and not (tmp_path / "lightning_logs").exists()


def test_tensorboard_receives_the_sample_grid(cfg_factory, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from parti_exp.train import train

    train(
        cfg_factory(
            "logger=tensorboard",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
            "trainer.log_every_n_steps=1",
        )
    )
    (events,) = (tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    assert "samples" in accumulator.Tags()["images"]
    assert "train/d_loss" in accumulator.Tags()["scalars"]
