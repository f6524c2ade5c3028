"""The digit classifier (accuracy, trained once) and the real-statistics cache (a hit extracts nothing)."""

from __future__ import annotations

import pytest
import torch
from hydra_compose import compose_train

from parti_exp.builders import build_module
from parti_exp.metrics import digit_classifier
from parti_exp.metrics.callback import ClassifierMetrics
from parti_exp.metrics.digit_classifier import DigitClassifier, load_or_train_classifier
from parti_exp.metrics.disk_cache import array_fingerprint


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
    assert set(values) == {"fid_clf", "is_clf", "is_clf_std", "kid_clf", "kid_clf_std"}
