import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import MNIST

from parti_exp.data import MNISTDataModule


def _setup(root, **kwargs) -> MNISTDataModule:
    dm = MNISTDataModule(root=root, batch_size=kwargs.pop("batch_size", 8), **kwargs)
    dm.prepare_data()
    dm.setup()
    return dm


@pytest.mark.parametrize("gz", [False, True])
def test_native_size_keeps_the_written_pixels_labels_and_splits(tmp_path, make_mnist, gz):
    written = make_mnist(tmp_path, gz=gz)
    dm = _setup(tmp_path, img_size=28)
    for split, dataset in (("train", dm.train_set), ("val", dm.val_set)):
        np.testing.assert_array_equal(dataset.images, written.images[split])
        np.testing.assert_array_equal(dataset.labels, written.labels[split])
        assert dataset.labels.dtype == np.int64
    assert (dm.img_size, dm.channels, dm.num_classes) == (28, 1, 10)


def test_default_32px_is_pil_bilinear_resize(tmp_path, make_mnist):
    written = make_mnist(tmp_path)
    dm = _setup(tmp_path)
    expected = np.stack(
        [np.asarray(Image.fromarray(im[0]).resize((32, 32), Image.Resampling.BILINEAR)) for im in written.images["val"]]
    )[:, None]
    assert dm.val_set.images.shape == (16, 1, 32, 32)
    np.testing.assert_array_equal(dm.val_set.images, expected)


def test_batches_are_in_unit_range_with_the_configured_shape(tmp_path, make_mnist):
    written = make_mnist(tmp_path)
    dm = _setup(tmp_path, img_size=28)
    images, labels = dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)
    assert images.shape == (8, 1, 28, 28) and images.dtype == torch.float32
    # The val loader is sequential: the first batch is the first 8 written images, mapped 0..255 -> -1..1.
    expected = torch.from_numpy(written.images["val"][:8]).float() / 127.5 - 1
    torch.testing.assert_close(images, expected)
    assert images.min() == -1 and images.max() == 1
    assert labels.tolist() == written.labels["val"][:8].tolist()
    train_images, _ = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert train_images.shape == (8, 1, 28, 28) and -1 <= train_images.min() <= train_images.max() <= 1


def test_second_load_reads_the_cache_without_decoding(tmp_path, make_mnist, monkeypatch):
    make_mnist(tmp_path)
    first = _setup(tmp_path)
    cache_files = sorted((tmp_path / ".cache").glob("*.npy"))
    assert len(cache_files) == 4  # images + labels for train and val
    mtimes = [f.stat().st_mtime_ns for f in cache_files]

    def no_decoding(self, split):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(MNISTDataModule, "decode", no_decoding)
    second = _setup(tmp_path)
    assert isinstance(second.train_set.images, np.memmap)
    np.testing.assert_array_equal(second.train_set.images, first.train_set.images)
    assert [f.stat().st_mtime_ns for f in cache_files] == mtimes


def test_changed_size_or_source_file_builds_a_new_entry(tmp_path, make_mnist):
    make_mnist(tmp_path)
    _setup(tmp_path)
    _setup(tmp_path, img_size=28)
    assert len(list((tmp_path / ".cache").glob("mnist-val-*.images.npy"))) == 2

    rewritten = make_mnist(tmp_path, n_val=8, seed=1)  # same names, new content
    dm = _setup(tmp_path, img_size=28)
    np.testing.assert_array_equal(dm.val_set.images, rewritten.images["val"])
    assert len(list((tmp_path / ".cache").glob("mnist-val-*.images.npy"))) == 3


def test_cache_dir_option_moves_the_cache(tmp_path, make_mnist):
    make_mnist(tmp_path / "data")
    _setup(tmp_path / "data", cache_dir=tmp_path / "elsewhere")
    assert not (tmp_path / "data" / ".cache").exists()
    assert len(list((tmp_path / "elsewhere").glob("mnist-*.images.npy"))) == 2


def test_missing_data_names_the_folder_the_files_and_the_remedy(tmp_path):
    dm = MNISTDataModule(root=tmp_path, batch_size=8)
    with pytest.raises(FileNotFoundError) as error:
        dm.prepare_data()
    message = str(error.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "data.download=true" in message and "paths.data_dir=" in message


@pytest.mark.parametrize(
    "corrupt,message",
    [
        (lambda data: data[:-100], "truncated or corrupt"),
        (lambda data: b"\x00\x00\x0d\x03" + data[4:], "magic number is 00000d03, expected 00000803"),
        (lambda data: data[:6], "magic number"),
    ],
)
def test_corrupt_idx_file_is_named(tmp_path, make_mnist, corrupt, message):
    written = make_mnist(tmp_path)
    path = written.files["train"][0]
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(ValueError, match=message) as error:
        _setup(tmp_path)
    assert str(path) in str(error.value)


def test_truncated_gzip_is_named(tmp_path, make_mnist):
    written = make_mnist(tmp_path, gz=True)
    path = written.files["val"][1]
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(ValueError, match="cannot read MNIST file") as error:
        _setup(tmp_path)
    assert str(path) in str(error.value)


def test_unwritable_cache_is_reported_at_prepare_data(tmp_path, make_mnist):
    make_mnist(tmp_path)
    (tmp_path / "file").write_text("")
    dm = MNISTDataModule(root=tmp_path, batch_size=8, cache_dir=tmp_path / "file" / "cache")
    with pytest.raises(PermissionError, match="data.cache_dir=") as error:
        dm.prepare_data()
    assert str(tmp_path / "file" / "cache") in str(error.value)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"img_size": 0}, "data.img_size must be a positive integer"),
        ({"channels": 3}, "MNIST has channels=1"),
        ({"num_classes": 2}, "num_classes=10"),
    ],
)
def test_bad_settings_fail_at_construction(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        MNISTDataModule(root=tmp_path, **kwargs)


def test_download_true_fetches_through_torchvision_when_files_are_missing(tmp_path, make_mnist, monkeypatch):
    calls = []

    def fake_mnist(root, train, download):
        calls.append((root, train, download))
        make_mnist(root)  # what torchvision's download leaves on disk

    monkeypatch.setattr("parti_exp.data.mnist.MNIST", fake_mnist)
    dm = _setup(tmp_path, download=True)
    assert calls == [(tmp_path, True, True)]
    assert len(dm.train_set) == 48
    _setup(tmp_path, download=True)
    assert len(calls) == 1  # files present: no second download


def test_torchvision_reads_the_fixture_like_the_official_files(tmp_path, make_mnist):
    written = make_mnist(tmp_path)
    reference = MNIST(tmp_path, train=False)
    dm = _setup(tmp_path, img_size=28)
    np.testing.assert_array_equal(dm.val_set.images[:, 0], reference.data.numpy())
    np.testing.assert_array_equal(dm.val_set.labels, reference.targets.numpy())
    np.testing.assert_array_equal(reference.targets.numpy(), written.labels["val"])
