"""A resumed run keeps its history: its metrics.csv, TensorBoard events and curves hold every row the run logged,
from before the stop and after the resume, once each; the same as the run left alone."""

import csv
import warnings

import pytest
from test_resume import interrupt_after_d_step

from parti_exp.callbacks.loss_curves import LossCurves
from parti_exp.train import train

# 4 epochs of 3 batches, every step logged, the classifier metrics every 2 epochs (epoch-end rows).
RUN = [
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=1",
    "trainer.deterministic=true",
    "trainer.cpu_threads=1",  # the same threads in every run: the same rounding
    "data.batch_size=16",
    "metrics=classifier",
    "metrics.num_fake=20",
    "metrics.is_splits=2",
    "metrics.every_n_epochs=2",
    "logger=many",
    "logger.wandb.offline=true",
]


def csv_rows(run_dir) -> list[dict]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        return [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(file)]


def tensorboard_steps(run_dir, key: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return [event.step for event in events.Scalars(key)]


def curves(result):
    return next(c for c in result.trainer.callbacks if isinstance(c, LossCurves)).history


def same_rows(a: list[dict], b: list[dict]) -> None:
    """The same rows in the same order, the same keys, values equal to float rounding."""
    assert [sorted(row) for row in a] == [sorted(row) for row in b]
    for i, (x, y) in enumerate(zip(a, b)):
        assert {k: pytest.approx(float(v), rel=1e-5, abs=1e-6) for k, v in x.items()} == {
            k: float(v) for k, v in y.items()}, f"row {i}"


@pytest.mark.slow
def test_a_run_stopped_at_an_epoch_and_resumed_has_every_row_once(cfg_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    full = train(cfg_factory(*RUN, "trainer.max_epochs=4", f"paths.output_dir={full_dir}"))
    train(cfg_factory(*RUN, "trainer.max_epochs=2", f"paths.output_dir={cut_dir}"))
    before = csv_rows(cut_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = train(cfg_factory(*RUN, "trainer.max_epochs=4", f"paths.output_dir={cut_dir}", "ckpt_path=last"))
    # The run's own directory is not "not empty" to the run that continues it.
    assert not [str(w.message) for w in caught if "not empty" in str(w.message)]

    rows = csv_rows(cut_dir)
    assert rows[: len(before)] == before  # the first half is still there, first
    same_rows(rows, csv_rows(full_dir))
    assert sum("val/fid_clf" in row for row in rows) == 2  # epochs 1 and 3
    assert tensorboard_steps(cut_dir, "train/d_loss") == tensorboard_steps(full_dir, "train/d_loss")
    assert curves(resumed).keys() == curves(full).keys()
    for key, points in curves(full).items():
        assert [step for step, _ in curves(resumed)[key]] == [step for step, _ in points], key
    # The resumed run continued the W&B run of the first half.
    assert len({path.name.rsplit("-", 1)[-1] for path in (cut_dir / "wandb").glob("offline-run-*")}) == 1


@pytest.mark.slow
def test_a_run_preempted_mid_epoch_drops_the_rows_it_logs_again(cfg_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    run = [*(o for o in RUN if not o.startswith("logger")), "trainer.max_epochs=2",
           "callbacks.model_checkpoint.every_n_g_steps=2"]
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    train(cfg_factory(*run, f"paths.output_dir={full_dir}"))
    with monkeypatch.context() as patch:
        interrupt_after_d_step(patch, 5)  # mid-epoch 1; the last step checkpoint was at G step 4
        train(cfg_factory(*run, f"paths.output_dir={cut_dir}"))
    train(cfg_factory(*run, f"paths.output_dir={cut_dir}", "ckpt_path=last"))
    rows = csv_rows(cut_dir)

    steps = [int(row["step"]) for row in rows if "train/d_loss" in row]
    assert steps == sorted(set(steps))
    same_rows(rows, csv_rows(full_dir))
