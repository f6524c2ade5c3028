"""The switches that published protocols need: how images reach Inception's 299 px (metrics.resize), which real
split they are compared with (metrics.real_split=test), and 50,000 generated images (metrics.num_fake)."""

import numpy as np
import pytest
import torch
from dataset_files import write_cifar10
from PIL import Image

from parti_exp.data import CIFAR10DataModule
from parti_exp.errors import ConfigError
from parti_exp.metrics.disk_cache import module_fingerprint
from parti_exp.metrics.image_quality import ClassifierMetrics, InceptionMetrics
from parti_exp.metrics.inception import InceptionFeatures, clean_resize


def test_clean_resize_is_pil_bicubic_of_each_float_channel():
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 3, 8, 8), dtype=np.uint8))
    out = clean_resize(images, size=20)
    assert out.dtype == torch.uint8 and out.shape == (2, 3, 20, 20)
    plane = Image.fromarray(images[1, 2].numpy().astype(np.float32)).resize((20, 20), Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(out[1, 2].numpy(), np.rint(np.asarray(plane).clip(0, 255)))
    assert clean_resize(out, size=20) is out  # already at size: untouched


def test_clean_and_legacy_resizing_give_different_features_and_equal_ones_at_299(inception_weights):
    rng = np.random.default_rng(0)
    small = torch.from_numpy(rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8))
    native = torch.from_numpy(rng.integers(0, 256, (2, 3, 299, 299), dtype=np.uint8))
    legacy, clean = InceptionFeatures(inception_weights, "legacy"), InceptionFeatures(inception_weights, "clean")
    with torch.no_grad():
        small_legacy, small_clean = legacy(small)[0], clean(small)[0]
        native_legacy, native_clean = legacy(native)[0], clean(native)[0]
    assert (small_legacy - small_clean).abs().max() > 1e-3 * small_legacy.abs().max()
    torch.testing.assert_close(native_legacy, native_clean, rtol=0, atol=0)


def test_the_resize_rule_is_part_of_the_real_statistics_key(inception_weights, tmp_path):
    settings = {"num_fake": 10, "cache_dir": str(tmp_path), "weights_path": str(inception_weights), "prdc": False}
    legacy, clean = InceptionMetrics(resize="legacy", **settings), InceptionMetrics(resize="clean", **settings)
    extractor = legacy.load_extractor(None, torch.device("cpu"))
    # legacy keeps the key statistics were cached under before the switch existed
    assert legacy.extractor_fingerprint(extractor) == module_fingerprint(extractor)
    assert clean.extractor_fingerprint(extractor) != legacy.extractor_fingerprint(extractor)
    assert "clean rule" in clean.feature_space()
    with pytest.raises(ConfigError, match=r"metrics.resize must be one of \('legacy', 'clean'\), got 'bilinear'"):
        InceptionMetrics(resize="bilinear", **settings)


def test_real_split_test_reads_cifar10s_test_batch_and_is_refused_where_there_is_none(tmp_path, digits):
    written = write_cifar10(tmp_path, per_batch=4, n_test=12)
    cifar = CIFAR10DataModule(root=tmp_path, verify=False, batch_size=4)
    settings = {"num_fake": 10, "cache_dir": str(tmp_path / "cache"), "prdc": False}
    images, labels = ClassifierMetrics(real_split="test", **settings).real_images(cifar)
    np.testing.assert_array_equal(images, written.images["val"])  # test_batch, 12 images
    np.testing.assert_array_equal(labels, written.labels["val"])
    train_images, _ = ClassifierMetrics(real_split="train", **settings).real_images(cifar)
    assert len(train_images) == 20
    with pytest.raises(ConfigError, match=r"metrics.real_split=test needs data whose val split is its official test "
                                          r"split \(cifar10, mnist\); digits's val split is not"):
        ClassifierMetrics(real_split="test", **settings).real_images(digits)


class NoiseModel:
    """Makes uniform-noise digits for the metrics, counting them."""

    device = torch.device("cpu")

    def __init__(self) -> None:
        self.made = 0

    def generate_for_metrics(self, n, labels, generator):
        self.made += n
        return torch.rand(n, 1, 16, 16, generator=generator) * 2 - 1


@pytest.mark.slow
def test_fifty_thousand_generated_images(digits, metrics_cache, cpu):
    metrics = ClassifierMetrics(num_fake=50_000, batch_size=5000, cache_dir=str(metrics_cache), prdc=False)
    metrics.prepare(digits, cpu)
    model = NoiseModel()
    values = metrics.measure(model, cpu)
    assert model.made == 50_000
    assert metrics.metrics.num_real == len(digits.train_set)
    assert values["fid_clf"] > 10 and 1.0 <= values["is_clf"] <= 10.0  # noise is far from digits
