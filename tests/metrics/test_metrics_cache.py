"""The digit classifier (accuracy, trained once) and the real-statistics cache (a hit extracts nothing), with the
real kNN subset beside it (drawn from the cached features, then loaded)."""

from __future__ import annotations

import pytest
import torch
from hydra_compose import compose_train

from parti_exp.builders import build_module
from parti_exp.metrics import digit_classifier
from parti_exp.metrics.digit_classifier import DigitClassifier, load_or_train_classifier
from parti_exp.metrics.disk_cache import array_fingerprint
from parti_exp.metrics.image_quality import ClassifierMetrics
from parti_exp.metrics.prdc import PrecisionRecallDensityCoverage


def test_classifier_is_accurate_on_held_out_digits_and_trains_once(digits, tmp_path, monkeypatch):
    first = load_or_train_classifier(digits.train_set, digits.val_set, 10, tmp_path, torch.device("cpu"), "digits")
    assert first.trained_now and first.path.is_file() and first.path.parent == tmp_path / "classifier"
    assert first.val_accuracy > 0.9
    assert digit_classifier.accuracy(first.net, digits.val_set, torch.device("cpu")) == first.val_accuracy
    assert not list(tmp_path.rglob("*.tmp"))  # written atomically: no temporary file left behind

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded")

    monkeypatch.setattr(digit_classifier, "train_classifier", no_training)
    second = load_or_train_classifier(digits.train_set, digits.val_set, 10, tmp_path, torch.device("cpu"), "digits")
    assert not second.trained_now and second.val_accuracy == first.val_accuracy
    images = torch.from_numpy(digits.val_set.images)
    for a, b in zip(first.net(images), second.net(images)):
        assert torch.equal(a, b)


def test_cache_keys_follow_the_images():
    images = torch.randint(0, 256, (20, 1, 8, 8), dtype=torch.uint8).numpy()
    labels = torch.arange(20).numpy() % 10
    changed = images.copy()
    changed[7, 0, 3, 3] ^= 1
    assert array_fingerprint(images, labels) == array_fingerprint(images.copy(), labels.copy())
    assert array_fingerprint(changed, labels) != array_fingerprint(images, labels)
    assert array_fingerprint(images, (labels + 1) % 10) != array_fingerprint(images, labels)


def test_multi_label_datasets_are_refused_with_a_remedy(digits, tmp_path):
    from parti_exp.data.base import UInt8ImageDataset

    attributes = UInt8ImageDataset(digits.train_set.images, torch.zeros(len(digits.train_set), 40).numpy())
    with pytest.raises(ValueError, match="metrics=inception"):
        load_or_train_classifier(attributes, digits.val_set, 40, tmp_path, torch.device("cpu"), "celeba")


def test_a_real_statistics_cache_hit_extracts_no_real_image(digits, metrics_cache, tmp_path, cpu, monkeypatch):
    calls = []
    forward = DigitClassifier.forward
    monkeypatch.setattr(DigitClassifier, "forward", lambda self, x: calls.append(len(x)) or forward(self, x))
    settings = dict(num_fake=300, cache_dir=str(metrics_cache), batch_size=200, kid_subset_size=100)
    model = build_module(compose_train(tmp_path, "metrics=classifier"))

    first = ClassifierMetrics(**settings)
    first.prepare(digits, cpu)  # the classifier may come from another test's session cache: not counted here
    cache_file = next((metrics_cache / "real_stats").glob("digits-train-*.pt"))
    cache_file.unlink()  # make this a miss
    calls.clear()
    first = ClassifierMetrics(**settings)
    first.prepare(digits, cpu)
    assert sum(calls) == len(digits.train_set)  # a miss extracts every real image, once
    assert cache_file.is_file()

    calls.clear()
    second = ClassifierMetrics(**settings)
    second.prepare(digits, cpu)
    assert calls == []  # the hit: no real image went through the network
    assert second.metrics.num_real == len(digits.train_set)
    values = second.measure(model, cpu)
    assert sum(calls) == 300  # only the generated images
    assert values == first.measure(model, cpu)
    four = {"precision_clf", "recall_clf", "density_clf", "coverage_clf"}
    assert set(values) == {"fid_clf", "is_clf", "is_clf_std", "kid_clf", "kid_clf_std", "min_class_share_clf"} | four


def test_the_real_knn_subset_is_cached_beside_the_statistics(digits, metrics_cache, tmp_path, cpu, monkeypatch):
    calls = []
    forward = DigitClassifier.forward
    monkeypatch.setattr(DigitClassifier, "forward", lambda self, x: calls.append(len(x)) or forward(self, x))
    settings = dict(num_fake=300, cache_dir=str(metrics_cache), batch_size=300, kid_subset_size=100, num_real_knn=1000)
    ClassifierMetrics(**settings).prepare(digits, cpu)  # the statistics, from the session's cache or made now
    knn_file = next((metrics_cache / "real_knn").glob("digits-train-*-knn1000-k3-5.pt"))
    knn_file.unlink()

    calls.clear()
    first = ClassifierMetrics(**settings)
    first.prepare(digits, cpu)
    assert calls == []  # drawn from the cached statistics' real features: no image through the network
    assert knn_file.is_file() and first.metrics.prdc.real_features.shape == (1000, 128)

    def no_radii(*args, **kwargs):
        raise AssertionError("the cached real kNN subset should have been loaded")

    monkeypatch.setattr(PrecisionRecallDensityCoverage, "real_state", no_radii)
    second = ClassifierMetrics(**settings)
    second.prepare(digits, cpu)
    assert calls == []
    for name in ("real_features", "real_radius_pr", "real_radius_dc"):
        assert torch.equal(getattr(second.metrics.prdc, name), getattr(first.metrics.prdc, name)), name
    model = build_module(compose_train(tmp_path, "metrics=classifier"))
    values = second.measure(model, cpu)
    assert values == first.measure(model, cpu)
    assert 0 <= values["precision_clf"] <= 1 and 0 <= values["min_class_share_clf"] <= 0.1
