import numpy as np
import pytest
import torch
from PIL import Image

from parti_exp.data import CelebADataModule


def _setup(root, **kwargs) -> CelebADataModule:
    # The fixture's list files cannot match the official md5 sums.
    kwargs = {"img_size": 16, "crop": 30, "batch_size": 4, "decode_workers": 0, "verify": False, **kwargs}
    dm = CelebADataModule(root=root, **kwargs)
    dm.prepare_data()
    dm.setup()
    return dm


def _pil(path, crop, size, mode="RGB"):
    """The expected preprocessing, spelled out with PIL: center crop box, then a bicubic resize."""
    image = Image.open(path).convert(mode)
    left, top = (image.width - crop) // 2, (image.height - crop) // 2
    resized = image.crop((left, top, left + crop, top + crop)).resize((size, size), Image.Resampling.BICUBIC)
    array = np.asarray(resized)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def test_splits_pixels_and_all_40_attributes(tmp_path, make_celeba):
    written = make_celeba(tmp_path)
    dm = _setup(tmp_path)
    assert len(dm.train_set) == 24 and len(dm.val_set) == 6  # partition 2 (test) is not used
    for split, dataset in (("train", dm.train_set), ("val", dm.val_set)):
        expected = np.stack([_pil(path, 30, 16) for path in written.files[split]])
        np.testing.assert_array_equal(dataset.images, expected)
        np.testing.assert_array_equal(dataset.labels, written.labels[split])
        assert dataset.labels.shape == (len(dataset), 40) and dataset.labels.dtype == np.int64
    assert set(np.unique(dm.train_set.labels)) == {0, 1}


def test_grayscale_and_a_crop_equal_to_the_image_width(tmp_path, make_celeba):
    written = make_celeba(tmp_path)
    dm = _setup(tmp_path, channels=1, crop=36, img_size=36)
    assert dm.val_set.images.shape == (6, 1, 36, 36)
    np.testing.assert_array_equal(dm.val_set.images[0], _pil(written.files["val"][0], 36, 36, mode="L"))


def test_label_attr_serves_one_attribute_as_a_class_and_reuses_the_cached_images(tmp_path, make_celeba):
    written = make_celeba(tmp_path)
    _setup(tmp_path)
    entries = sorted((tmp_path / ".cache").glob("*.images.npy"))
    dm = _setup(tmp_path, label_attr="Smiling", num_classes=2)
    smiling = (tmp_path / "celeba" / "list_attr_celeba.txt").read_text().splitlines()[1].split().index("Smiling")
    np.testing.assert_array_equal(dm.train_set.labels, written.labels["train"][:, smiling])
    assert dm.train_set.labels.shape == (24,)
    assert sorted((tmp_path / ".cache").glob("*.images.npy")) == entries


def test_changing_crop_or_size_builds_new_entries(tmp_path, make_celeba):
    make_celeba(tmp_path)
    _setup(tmp_path)
    _setup(tmp_path, crop=20)
    _setup(tmp_path, crop=20, img_size=8)
    names = sorted(p.name for p in (tmp_path / ".cache").glob("celeba-train-*.images.npy"))
    assert len(names) == 3
    assert any("img_size16-channels3-crop30" in n for n in names)
    assert any("img_size8-channels3-crop20" in n for n in names)


def test_batches_are_in_unit_range(tmp_path, make_celeba):
    make_celeba(tmp_path)
    dm = _setup(tmp_path)
    images, labels = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.float32
    assert -1 <= images.min() < 0 < images.max() <= 1
    assert labels.shape == (4, 40)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_classes": 2}, "data.num_classes=2"),
        ({"label_attr": "Smiling"}, "data.label_attr=Smiling"),
        ({"crop": 0}, "data.crop must be a positive integer"),
        ({"img_size": 0}, "data.img_size must be a positive integer"),
    ],
)
def test_bad_settings_fail_at_construction(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        CelebADataModule(root=tmp_path, **kwargs)


def test_unknown_attribute_lists_the_valid_ones(tmp_path, make_celeba):
    make_celeba(tmp_path)
    with pytest.raises(ValueError, match="data.label_attr=Happy is not a CelebA attribute.*Smiling"):
        _setup(tmp_path, label_attr="Happy", num_classes=2)


def test_crop_larger_than_the_images_is_refused(tmp_path, make_celeba):
    written = make_celeba(tmp_path)
    with pytest.raises(ValueError, match=r"data.crop=40 is larger than the image \(36x44\); use data.crop <= 36") as e:
        _setup(tmp_path, crop=40)
    assert str(written.files["train"][0]) in str(e.value)


def test_unreadable_jpeg_is_named(tmp_path, make_celeba):
    written = make_celeba(tmp_path)
    bad = written.files["train"][5]
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(ValueError, match="cannot decode image") as error:
        _setup(tmp_path)
    assert str(bad) in str(error.value)


def test_missing_files_are_named_with_the_remedy(tmp_path, make_celeba):
    make_celeba(tmp_path)
    (tmp_path / "celeba" / "list_attr_celeba.txt").unlink()
    with pytest.raises(FileNotFoundError) as error:
        _setup(tmp_path)
    message = str(error.value)
    assert str(tmp_path / "celeba") in message and "list_attr_celeba.txt" in message
    assert "list_eval_partition.txt" not in message
    assert "data.download=true" in message


def test_listed_image_missing_on_disk_is_named(tmp_path, make_celeba):
    written = make_celeba(tmp_path)
    written.files["val"][2].unlink()
    with pytest.raises(FileNotFoundError, match="is missing") as error:
        _setup(tmp_path)
    assert str(written.files["val"][2]) in str(error.value)


def test_malformed_attribute_line_is_named_with_its_number(tmp_path, make_celeba):
    make_celeba(tmp_path)
    path = tmp_path / "celeba" / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace(" 1", " 0", 1) if " 1" in lines[4] else lines[4].replace("-1", " 0", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ValueError, match=r"list_attr_celeba.txt, line 5: expected an image name and 40 values of -1 or 1"
    ):
        _setup(tmp_path)


def test_verify_checks_the_list_files_md5(tmp_path, make_celeba):
    make_celeba(tmp_path)
    with pytest.raises(ValueError, match="does not match the md5 of the official CelebA release") as error:
        _setup(tmp_path, verify=True)
    assert "list_eval_partition.txt" in str(error.value) and "data.verify=false" in str(error.value)
