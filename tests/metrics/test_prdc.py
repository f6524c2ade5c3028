"""Precision, recall, density and coverage: equal to torch-fidelity's and the ``prdc`` package's on the same
features, chunking changes nothing, and they tell real, collapsed and noise generators apart; the per-class share
and its chart; the settings' checks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import prdc as prdc_reference
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from sklearn.datasets import load_digits
from torch_fidelity.metric_prc import calculate_precision_recall_full

from parti_exp.metrics.class_share import bar_chart
from parti_exp.metrics.digit_classifier import load_or_train_classifier
from parti_exp.metrics.feature_metrics import FeatureMetrics
from parti_exp.metrics.image_quality import ClassifierMetrics
from parti_exp.metrics.prdc import (
    DC_K,
    PR_K,
    kth_neighbour_distances,
    precision_recall_density_coverage,
    real_state,
)


@pytest.fixture(scope="module")
def pixel_features() -> tuple[torch.Tensor, torch.Tensor]:
    """(real, fake): scikit-learn's 1,797 digits as 64-d float64 pixel vectors, split in two, the fake half with
    integer noise in [-2, 2], so that all four numbers are strictly between 0 and 1 (an equality at 0 or 1 would
    prove little). Integer features make every distance the square root of an integer, computed exactly: samples
    lie exactly on radii, and each number here changes if its ``<`` / ``<=`` convention is swapped."""
    pixels = torch.from_numpy(load_digits().data)
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(pixels), generator=generator)
    real, fake = pixels[order[:900]], pixels[order[900:]]
    return real, fake + torch.randint(-2, 3, fake.shape, generator=generator, dtype=fake.dtype)


def test_precision_and_recall_equal_torch_fidelity(pixel_features):
    real, fake = pixel_features
    ours = precision_recall_density_coverage(real_state(real, len(real)), fake)
    # torch-fidelity's convention: features_1 generated, features_2 real; k = 3 is its default neighbourhood.
    precision, recall = calculate_precision_recall_full(fake, real, neighborhood=PR_K)
    assert 0.1 < ours["precision"] < 0.9 and 0.1 < ours["recall"] < 0.99
    assert ours["precision"] == pytest.approx(precision, abs=1e-6)
    assert ours["recall"] == pytest.approx(recall, abs=1e-6)


def test_density_and_coverage_equal_the_prdc_package(pixel_features):
    real, fake = pixel_features
    ours = precision_recall_density_coverage(real_state(real, len(real)), fake)
    theirs = prdc_reference.compute_prdc(real.numpy(), fake.numpy(), nearest_k=DC_K)
    assert 0.1 < ours["density"] < 0.9 and 0.1 < ours["coverage"] < 0.9
    assert ours["density"] == pytest.approx(theirs["density"], abs=1e-6)
    assert ours["coverage"] == pytest.approx(theirs["coverage"], abs=1e-6)


def test_chunked_distances_equal_unchunked(pixel_features):
    real, fake = pixel_features
    whole = 2**40  # one block
    uneven = 7 * len(real) + 3  # blocks of 7 rows, the last one shorter
    radii = kth_neighbour_distances(real, (PR_K, DC_K), "real", whole)
    assert torch.allclose(kth_neighbour_distances(real, (PR_K, DC_K), "real", uneven), radii, rtol=1e-12, atol=0)
    # Against sorting the full distance matrix: the row itself first, then its neighbours.
    ranked = torch.cdist(real, real).sort(dim=1).values
    assert torch.allclose(radii, ranked[:, [PR_K, DC_K]].T, rtol=1e-12, atol=0)
    chunked = precision_recall_density_coverage(real_state(real, len(real), uneven), fake, uneven)
    assert chunked == precision_recall_density_coverage(real_state(real, len(real), whole), fake, whole)


def test_the_real_subset_is_fixed_and_bounded(pixel_features):
    real, _ = pixel_features
    first, second = real_state(real, 100), real_state(real, 100)
    assert first["features"].shape == (100, 64) and torch.equal(first["features"], second["features"])
    assert real_state(real, 10000)["features"].shape == real.shape  # all, when fewer than asked for
    with pytest.raises(ValueError, match="5 real images are too few .* at least 6"):
        real_state(real[:5], 100)


@pytest.fixture(scope="module")
def classifier_sets(digits, metrics_cache):
    """The digit classifier, and the train split's images in two disjoint halves with the second half's labels."""
    net = load_or_train_classifier(
        digits.train_set, digits.val_set, 10, metrics_cache, torch.device("cpu"), "digits"
    ).net
    images = torch.from_numpy(digits.train_set.images)
    labels = torch.as_tensor(np.asarray(digits.train_set.labels))
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    half = len(images) // 2
    return net, images[order[:half]], images[order[half:]], labels[order[half:]]


def measured(net, real: torch.Tensor, fake: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
    """All metrics and the class shares of ``fake`` against ``real`` in the classifier's space."""
    size = min(len(real), len(fake))
    metrics = FeatureMetrics(net, is_splits=1, kid_subsets=2, kid_subset_size=size, prdc=True, class_share=True)
    metrics.update(real, real=True)
    metrics.prdc.set_real(metrics.prdc.real_state(metrics.gathered_real_state()["kid_real_features"], 10000))
    metrics.update(fake, real=False)
    return metrics.compute(), metrics.class_shares()


def test_real_against_real_scores_near_one(classifier_sets):
    net, real, other, _ = classifier_sets
    values, shares = measured(net, real, other)
    assert values["precision"] > 0.85 and values["recall"] > 0.85 and values["coverage"] > 0.9
    assert 0.85 < values["density"] < 1.2
    assert shares.sum() == pytest.approx(1.0) and shares.min() > 0.07  # ten classes, about 0.1 each


def test_a_generator_collapsed_to_one_class_has_low_recall_and_coverage(classifier_sets):
    net, real, other, labels = classifier_sets
    sevens = other[labels == 7]
    values, shares = measured(net, real, sevens)
    # Good sevens are faithful (precision high) but cover a tenth of the data: FID alone cannot say which.
    assert values["precision"] > 0.75
    assert values["recall"] < 0.3 and values["coverage"] < 0.3
    assert shares[7] == 1.0 and shares.min() == 0.0


def test_noise_images_have_precision_and_density_near_zero(classifier_sets):
    net, real, _, _ = classifier_sets
    noise = torch.randint(0, 256, (400, *real.shape[1:]), generator=torch.Generator().manual_seed(1))
    values, _ = measured(net, real, noise.to(torch.uint8))
    assert values["precision"] < 0.05 and values["density"] < 0.05


def test_the_class_share_chart_reaches_tensorboard_and_csv_skips_it(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    chart = bar_chart(torch.tensor([0.5, 0.5, 0.0]), "title")
    assert chart.dtype == torch.uint8 and chart.shape[0] == 3 and chart.shape[1] > 100 and chart.shape[2] > 100
    assert len(chart.unique()) > 2  # bars, axes and text, not a blank canvas

    callback = ClassifierMetrics(num_fake=100, cache_dir=str(tmp_path))
    callback.class_shares = torch.tensor([0.5, 0.5, 0.0])
    board = TensorBoardLogger(str(tmp_path), name="tensorboard", version="")
    trainer = SimpleNamespace(loggers=[CSVLogger(str(tmp_path)), board], current_epoch=2, global_step=30)
    callback.log_class_shares(trainer)
    board.finalize("success")
    (events,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    (image,) = accumulator.Images("val/class_share")
    assert image.step == 30 and (image.height, image.width) == tuple(chart.shape[1:])


def test_bad_prdc_settings_are_refused_naming_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"metrics.num_real_knn must be an integer >= 6 .* got 5"):
        ClassifierMetrics(num_fake=100, cache_dir=str(tmp_path), num_real_knn=5)
    with pytest.raises(ValueError, match=r"metrics.num_fake=3 is too few for recall .* metrics.prdc=false"):
        ClassifierMetrics(num_fake=3, cache_dir=str(tmp_path), is_splits=1)
    ClassifierMetrics(num_fake=3, cache_dir=str(tmp_path), is_splits=1, prdc=False, num_real_knn=0)  # not used
