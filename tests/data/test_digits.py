import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from parti_exp.data import DigitsDataModule


def test_splits_are_disjoint_deterministic_and_cover_the_dataset():
    a, b = DigitsDataModule(), DigitsDataModule()
    a.setup()
    b.setup()
    assert len(a.train_set) + len(a.val_set) == 1797
    assert len(a.val_set) == round(0.1 * 1797)
    assert np.array_equal(a.train_set.images, b.train_set.images)
    # No image index in both splits: compare rows of the raw 8x8 data via the stored 8 px version.
    small = DigitsDataModule(img_size=8)
    small.setup()
    train_rows = {row.tobytes() for row in small.train_set.images}
    raw = load_digits()
    assert sum(row.tobytes() in train_rows for row in small.val_set.images) < 10  # the data has a few duplicates
    assert set(small.train_set.labels.tolist()) == set(range(10)) == set(raw.target.tolist())


def test_num_train_keeps_a_prefix_of_the_training_digits_and_the_same_val_split():
    full, small = DigitsDataModule(), DigitsDataModule(num_train=200)
    full.setup()
    small.setup()
    assert np.array_equal(small.train_set.images, full.train_set.images[:200])
    assert np.array_equal(small.val_set.images, full.val_set.images)


def test_native_resolution_keeps_the_original_grey_levels():
    dm = DigitsDataModule(img_size=8, val_fraction=0.5, split_seed=3)
    dm.setup()
    raw = load_digits()
    order = np.random.default_rng(3).permutation(1797)
    first_val = order[0]
    expected = np.round(raw.images[first_val] / 16 * 255).astype(np.uint8)
    assert np.array_equal(dm.val_set.images[0, 0], expected)
    assert dm.val_set.labels[0] == raw.target[first_val]


def test_batches_are_float_in_unit_range_after_transfer():
    dm = DigitsDataModule(img_size=32, batch_size=16)
    dm.setup()
    images, labels = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (16, 1, 32, 32)
    images, labels = dm.on_after_batch_transfer((images, labels), 0)
    assert images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    assert images.min() == -1  # the digits' background is black
    assert labels.dtype == torch.int64 and labels.shape == (16,)


def test_train_loader_drops_the_ragged_last_batch():
    dm = DigitsDataModule(batch_size=100)
    dm.setup()
    sizes = [len(x) for x, _ in dm.train_dataloader()]
    assert sizes == [100] * (len(dm.train_set) // 100)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"batch_size": 0}, "data.batch_size must be a positive integer"),
        ({"batch_size": -4}, "data.batch_size must be a positive integer"),
        ({"channels": 3}, "grayscale"),
        ({"val_fraction": 1.5}, "val_fraction"),
        ({"num_train": 0}, "data.num_train must be null"),
    ],
)
def test_bad_settings_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DigitsDataModule(**kwargs)


def test_batch_larger_than_dataset_is_refused_at_setup():
    dm = DigitsDataModule(batch_size=5000)
    with pytest.raises(ValueError, match="fewer than data.batch_size=5000"):
        dm.setup()
