"""Hydra's job log file (train.log) holds the run's messages: ours, Lightning's, warnings and the final error."""

from hydra_compose import run_entry_point, subprocess_env

TINY_RUN = (
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    "model.generator.width=8",
    "model.discriminator.width=8",
    "metrics=classifier",
    "metrics.num_fake=20",
    "metrics.every_n_epochs=1",
    "metrics.is_splits=2",
)


def test_train_log_holds_the_epoch_metrics_lightning_and_warnings(tmp_path):
    env = subprocess_env()
    env.pop("PYTHONWARNINGS")
    run_dir = tmp_path / "run"
    run_entry_point("parti_exp.train", *TINY_RUN, f"hydra.run.dir={run_dir}", f"paths.root_dir={tmp_path}", env=env)
    text = (run_dir / "train.log").read_text()
    assert "epoch 0: fid_clf=" in text  # the metrics callback's line (rank_zero_info)
    assert "`Trainer.fit` stopped: `max_epochs=1` reached." in text  # Lightning's own info line
    # Lightning's warning about the settings above (1 batch per epoch, logging every 10 steps).
    assert "[py.warnings][WARNING]" in text and "smaller than the logging interval" in text


def test_train_log_holds_the_error_that_ended_the_run(tmp_path):
    run_dir = tmp_path / "run"
    missing = tmp_path / "no_such_cifar"
    result = run_entry_point(
        "parti_exp.train", "data=cifar10", f"data.root={missing}", "metrics=none",
        f"hydra.run.dir={run_dir}", f"paths.root_dir={tmp_path}", check=False,
    )
    assert result.returncode == 1
    text = (run_dir / "train.log").read_text()
    assert "[ERROR]" in text and str(missing) in text
    assert "Traceback" not in text  # the message, as the console shows it
