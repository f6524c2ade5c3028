import os
import pickle

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision.datasets import CIFAR10

from parti_exp.data import CIFAR10DataModule


def _setup(root, **kwargs) -> CIFAR10DataModule:
    # The fixture's pixels are random, so they cannot match the official md5 sums.
    dm = CIFAR10DataModule(root=root, batch_size=kwargs.pop("batch_size", 8), verify=False, **kwargs)
    dm.prepare_data()
    dm.setup()
    return dm


def test_pickles_come_out_as_written(tmp_path, make_cifar10):
    written = make_cifar10(tmp_path)
    dm = _setup(tmp_path)
    assert len(dm.train_set) == 40 and len(dm.val_set) == 16
    for split, dataset in (("train", dm.train_set), ("val", dm.val_set)):
        np.testing.assert_array_equal(dataset.images, written.images[split])
        np.testing.assert_array_equal(dataset.labels, written.labels[split])
    # The first pixel of an image is the first red, green and blue values of its 3072-byte row.
    raw = pickle.loads((tmp_path / "cifar-10-batches-py" / "data_batch_2").read_bytes(), encoding="bytes")[b"data"]
    np.testing.assert_array_equal(dm.train_set.images[8, :, 0, 0], raw[0, [0, 1024, 2048]])
    assert (dm.img_size, dm.channels, dm.num_classes, dm.hflip) == (32, 3, 10, True)


def test_torchvision_reads_the_fixture_like_the_official_files(tmp_path, make_cifar10, monkeypatch):
    written = make_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    assert set(pickle.loads(path.read_bytes(), encoding="latin1")) == {"batch_label", "labels", "data", "filenames"}
    assert set(pickle.loads(path.read_bytes(), encoding="bytes")) == {b"batch_label", b"labels", b"data", b"filenames"}
    # torchvision's own reader, minus the md5 checks that random pixels cannot pass.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: True)
    reference = CIFAR10(tmp_path, train=False)
    assert reference.classes[:2] == ["airplane", "automobile"]
    dm = _setup(tmp_path)
    np.testing.assert_array_equal(dm.val_set.images, reference.data.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(dm.val_set.labels, reference.targets)
    np.testing.assert_array_equal(dm.val_set.labels, written.labels["val"])


@pytest.mark.parametrize("key", [b"data", "data"], ids=["bytes_keys", "str_keys"])
def test_python3_repickled_copies_are_read(tmp_path, make_cifar10, key):
    written = make_cifar10(tmp_path)
    for split in ("train", "val"):
        for path in written.files[split]:
            batch = pickle.loads(path.read_bytes(), encoding="bytes")
            path.write_bytes(pickle.dumps({k if isinstance(key, bytes) else k.decode(): v for k, v in batch.items()}))
    dm = _setup(tmp_path)
    np.testing.assert_array_equal(dm.train_set.images, written.images["train"])
    np.testing.assert_array_equal(dm.train_set.labels, written.labels["train"])


def test_other_sizes_are_pil_bicubic_resizes(tmp_path, make_cifar10):
    written = make_cifar10(tmp_path)
    dm = _setup(tmp_path, img_size=16)
    image = written.images["val"][3].transpose(1, 2, 0)
    expected = np.asarray(Image.fromarray(image).resize((16, 16), Image.Resampling.BICUBIC)).transpose(2, 0, 1)
    np.testing.assert_array_equal(dm.val_set.images[3], expected)


def test_hflip_flips_some_training_images_and_no_eval_images(tmp_path, make_cifar10, trainer):
    make_cifar10(tmp_path)
    dm = _setup(tmp_path, batch_size=16)
    dm.trainer = trainer
    batch = next(iter(dm.val_dataloader()))
    plain = batch[0].float() / 127.5 - 1

    trainer.validating = True
    images, _ = dm.on_after_batch_transfer(batch, 0)
    torch.testing.assert_close(images, plain)

    trainer.training = True
    torch.manual_seed(0)
    images, labels = dm.on_after_batch_transfer(batch, 0)
    flipped = (images == plain.flip(-1)).flatten(1).all(1)
    kept = (images == plain).flatten(1).all(1)
    assert (flipped | kept).all()
    assert 0 < flipped.sum() < 16
    assert images.shape == (16, 3, 32, 32) and -1 <= images.min() <= images.max() <= 1
    assert labels.dtype == torch.int64


def test_verify_rejects_files_that_differ_from_the_official_release(tmp_path, make_cifar10):
    make_cifar10(tmp_path)
    dm = CIFAR10DataModule(root=tmp_path, batch_size=8)
    with pytest.raises(ValueError, match="does not match the md5") as error:
        dm.prepare_data()
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in str(error.value)
    assert "data.verify=false" in str(error.value)


def test_missing_data_names_the_folder_the_files_and_the_remedy(tmp_path, make_cifar10):
    make_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    dm = CIFAR10DataModule(root=tmp_path, batch_size=8, verify=False)
    with pytest.raises(FileNotFoundError) as error:
        dm.setup()
    message = str(error.value)
    assert str(tmp_path / "cifar-10-batches-py") in message and "data_batch_3" in message
    assert "data_batch_1" not in message
    assert "data.download=true" in message


@pytest.mark.parametrize(
    "corrupt,message",
    [
        (lambda data: data[: len(data) // 2], "not a readable CIFAR batch"),
        (lambda data: b"garbage" + data, "not a readable CIFAR batch"),
        (lambda data: pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), "N x 3072"),
        (lambda data: pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}), "0..9"),
    ],
)
def test_corrupt_pickle_is_named(tmp_path, make_cifar10, corrupt, message):
    written = make_cifar10(tmp_path)
    path = written.files["val"][0]
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(ValueError, match=message) as error:
        _setup(tmp_path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "kwargs,message",
    [({"img_size": -32}, "data.img_size must be a positive integer"), ({"channels": 1}, "CIFAR-10 has channels=3")],
)
def test_bad_settings_fail_at_construction(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        CIFAR10DataModule(root=tmp_path, **kwargs)


def test_download_true_fetches_through_torchvision_when_files_are_missing(tmp_path, make_cifar10, monkeypatch):
    calls = []

    class FakeCIFAR10:
        base_folder = CIFAR10.base_folder

        def __init__(self, root, train, download):
            calls.append((root, train, download))
            make_cifar10(root)  # what torchvision's download leaves on disk

    monkeypatch.setattr("parti_exp.data.cifar10.CIFAR10", FakeCIFAR10)
    dm = _setup(tmp_path, download=True)
    assert calls == [(tmp_path, True, True)] and len(dm.train_set) == 40


class RunsShell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_batch_holding_pickled_code_is_refused_unrun(tmp_path, make_cifar10, protocol):
    # data.verify=false accepts batches from anywhere: they are unpickled as arrays and plain data only.
    written = make_cifar10(tmp_path)
    path, marker = written.files["val"][0], tmp_path / "pwned"
    data = np.zeros((2, 3072), np.uint8)
    path.write_bytes(pickle.dumps({b"data": data, b"labels": [0, 1], b"x": RunsShell(f"touch {marker}")}, protocol))
    with pytest.raises(ValueError, match=r"not a readable CIFAR batch .*pickled posix\.system.*not unpickled") as error:
        _setup(tmp_path)
    assert str(path) in str(error.value) and not marker.exists()
    # The same content without the extra object reads, whatever the protocol wrote its array with.
    path.write_bytes(pickle.dumps({b"data": data, b"labels": [0, 1]}, protocol))
    assert len(_setup(tmp_path).val_set) == 2
