"""hparams_search=optuna: a real 2-trial study on digits, each trial a training job returning its metric."""

import csv

import pytest
import yaml
from hydra_compose import run_entry_point


def last_value(metrics_csv, key: str) -> float:
    with open(metrics_csv) as f:
        values = [row[key] for row in csv.DictReader(f) if row.get(key)]
    return float(values[-1])


@pytest.mark.slow
def test_two_trial_study_minimises_the_returned_metric(tmp_path):
    metric = "val/fid_clf"  # what hparams_search=optuna optimises on digits (metrics=classifier)
    run_entry_point(
        "parti_exp.train",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "metrics.num_fake=200",
        "metrics.every_n_epochs=1",
        f"metrics.cache_dir={tmp_path}/metrics_cache",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=3",
        "model.generator.width=8",
        "model.discriminator.width=8",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={tmp_path}",
        f"paths.root_dir={tmp_path}",
    )
    trials = {}
    for number in (0, 1):
        overrides = yaml.safe_load((tmp_path / str(number) / ".hydra" / "overrides.yaml").read_text())
        trials[number] = (last_value(tmp_path / str(number) / "csv" / "metrics.csv", metric), overrides)
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    best_value, best_overrides = min(trials.values(), key=lambda t: t[0])
    assert best["best_value"] == pytest.approx(best_value, rel=1e-6)
    for name, value in best["best_params"].items():
        assert f"{name}={value}" in best_overrides
    # the two trials tried different learning rates
    lrs = {next(o for o in t[1] if o.startswith("model.g_optimizer.lr=")) for t in trials.values()}
    assert len(lrs) == 2
