"""The metrics inside training runs and the evaluate CLI: the composed configs, logging and the best
checkpoint, every_n_epochs, the start-up error without Inception weights, and evaluating a checkpoint."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import urllib.error

import pytest
import torch
from hydra_compose import subprocess_env

from parti_exp.builders import build_callbacks
from parti_exp.evaluate import evaluate
from parti_exp.metrics.image_quality import ClassifierMetrics, InceptionMetrics
from parti_exp.metrics.inception import default_weights_path
from parti_exp.train import train


def csv_rows(path):
    header, *rows = path.read_text().splitlines()
    return [dict(zip(header.split(","), row.split(","))) for row in rows]


@pytest.fixture
def classifier_run(cfg_factory, metrics_cache, tmp_path):
    """A two-epoch digits run with metrics=classifier (200 generated images per measurement)."""
    cfg = cfg_factory(
        "metrics=classifier", "metrics.every_n_epochs=1", "trainer.max_epochs=2", "trainer.limit_train_batches=2",
        f"metrics.cache_dir={metrics_cache}", "metrics.num_fake=200", "metrics.batch_size=200",
    )
    return train(cfg).trainer, tmp_path / "run"


def test_the_metrics_configs_compose_with_a_best_checkpoint(cfg_factory, metrics_cache):
    for option, monitored in (("classifier", "val/fid_clf"), ("inception", "val/fid")):
        cfg = cfg_factory(f"metrics={option}")
        assert cfg.callbacks.best_checkpoint.monitor == monitored and cfg.callbacks.best_checkpoint.mode == "min"
        assert cfg.metrics.cache_dir == f"{cfg.paths.data_dir}/.cache/metrics"
        assert {"num_fake", "every_n_epochs", "batch_size", "real_split"} <= set(cfg.metrics)
    assert cfg_factory("metrics=inception").metrics.num_fake == 10000
    assert cfg_factory("metrics=classifier").metrics.num_fake == 2000
    assert not cfg_factory("metrics=none").get("metrics")
    callbacks = build_callbacks(cfg_factory("metrics=classifier", f"metrics.cache_dir={metrics_cache}"))
    assert sum(isinstance(c, ClassifierMetrics) for c in callbacks) == 1


def test_a_classifier_run_logs_finite_metrics_and_keeps_the_best_checkpoint(classifier_run):
    trainer, run = classifier_run
    four = ("val/precision_clf", "val/recall_clf", "val/density_clf", "val/coverage_clf")
    for key in ("val/fid_clf", "val/is_clf", "val/kid_clf", *four, "val/min_class_share_clf"):
        assert math.isfinite(float(trainer.callback_metrics[key])), key
    for key in (*four, "val/min_class_share_clf"):
        assert 0 <= float(trainer.callback_metrics[key]) <= (5 if key == "val/density_clf" else 1), key
    rows = csv_rows(run / "csv" / "metrics.csv")
    fids = [float(r["val/fid_clf"]) for r in rows if r.get("val/fid_clf")]
    scores = [float(r["val/is_clf"]) for r in rows if r.get("val/is_clf")]
    assert len(fids) == len(scores) == 2  # both epochs measured
    # Each epoch is measured anew on the generator as it is then: a stale or constant metric fails here.
    assert fids[0] != fids[1] and scores[0] != scores[1]
    accuracy = [float(r["metrics/classifier_val_acc"]) for r in rows if r.get("metrics/classifier_val_acc")]
    assert len(accuracy) == 1 and accuracy[0] > 0.9
    best = list((run / "checkpoints").glob("best_fid_clf_epoch_*.ckpt"))
    assert len(best) == 1
    assert best[0].name == f"best_fid_clf_epoch_{fids.index(min(fids)):04d}.ckpt"


def test_every_n_epochs_measures_only_those_epochs(cfg_factory, metrics_cache, tmp_path):
    cfg = cfg_factory(
        "metrics=classifier", "trainer.max_epochs=2", "trainer.limit_train_batches=1", "metrics.every_n_epochs=2",
        f"metrics.cache_dir={metrics_cache}", "metrics.num_fake=100", "metrics.kid_subset_size=50",
    )
    train(cfg)
    rows = csv_rows(tmp_path / "run" / "csv" / "metrics.csv")
    measured = [r["epoch"] for r in rows if r.get("val/fid_clf")]
    assert measured == ["1"]
    assert [p.name for p in (tmp_path / "run" / "checkpoints").glob("best_*")] == ["best_fid_clf_epoch_0001.ckpt"]


def test_an_inception_run_logs_val_fid(cfg_factory, inception_weights, tmp_path):
    cfg = cfg_factory(
        "metrics=inception", f"metrics.weights_path={inception_weights}", "trainer.limit_train_batches=1",
        "metrics.num_real=8", "metrics.num_fake=8", "metrics.batch_size=8", "metrics.is_splits=2",
    )
    trainer = train(cfg).trainer
    assert trainer.callback_metrics["val/fid"] > 0 and trainer.callback_metrics["val/is"] >= 1
    assert len(list((tmp_path / "run" / "checkpoints").glob("best_fid_epoch_0000.ckpt"))) == 1
    assert len(list((tmp_path / "data" / ".cache" / "metrics" / "real_stats").glob("digits-train-*.pt"))) == 1


def test_a_missing_weights_path_fails_when_the_callbacks_are_built(cfg_factory, tmp_path):
    missing = tmp_path / "nowhere" / "inception.pth"
    with pytest.raises(Exception, match=re.escape(f"metrics.weights_path={missing} does not exist")):
        build_callbacks(cfg_factory("metrics=inception", f"metrics.weights_path={missing}"))


def test_offline_without_cached_weights_the_error_names_the_path_to_fill(monkeypatch, tmp_path, cfg_factory):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    expected = tmp_path / "torch_home" / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    assert default_weights_path() == expected
    with pytest.raises(FileNotFoundError) as error:
        InceptionMetrics(num_fake=100, cache_dir=str(tmp_path))
    message = str(error.value)
    assert str(expected) in message and "metrics.weights_path=" in message and "metrics=none" in message
    # The same error from the composed config, before any Trainer exists.
    with pytest.raises(Exception, match=re.escape(str(expected))):
        build_callbacks(cfg_factory("metrics=inception"))


def test_evaluate_a_checkpoint_with_its_own_metrics_config(classifier_run, evaluate_cfg, tmp_path):
    _, run = classifier_run
    ckpt = run / "checkpoints" / "last.ckpt"
    # evaluate.yaml's default group is metrics=inception (no weights here): the checkpoint's classifier config
    # must be the one used, with the typed key applied on top.
    overrides = ["metrics.num_fake=150", "device=cpu"]
    result = evaluate(evaluate_cfg(f"ckpt_path={ckpt}", *overrides), tmp_path / "eval", overrides=overrides)
    assert result["num_fake"] == 150 and result["num_real"] == 1617
    assert math.isfinite(result["fid_clf"]) and "fid" not in result
    assert {"precision_clf", "recall_clf", "density_clf", "coverage_clf", "min_class_share_clf"} <= set(result)
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == result


def test_evaluate_cli_prints_and_writes_metrics_json(classifier_run, tmp_path):
    _, run = classifier_run
    out = tmp_path / "eval_cli"
    command = [sys.executable, "-m", "parti_exp.evaluate", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
               "metrics.num_fake=120", f"hydra.run.dir={out}"]
    done = subprocess.run(command, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert re.search(r"fid_clf\s+\d", done.stdout)
    assert json.loads((out / "metrics.json").read_text())["num_fake"] == 120


def test_evaluate_needs_a_checkpoint_or_two_folders(evaluate_cfg, tmp_path):
    with pytest.raises(ValueError, match="either ckpt_path"):
        evaluate(evaluate_cfg(f"real_dir={tmp_path}"), tmp_path / "out")
