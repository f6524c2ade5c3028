import numpy as np
import pytest
import torch
from PIL import Image

from parti_exp.data import FolderDataModule


def _module(path, root, **kwargs) -> FolderDataModule:
    kwargs = {"img_size": 24, "num_classes": 3, "batch_size": 4, "val_fraction": 0.2, "decode_workers": 0, **kwargs}
    return FolderDataModule(path=path, root=root, **kwargs)


def _setup(path, root, **kwargs) -> FolderDataModule:
    dm = _module(path, root, **kwargs)
    dm.prepare_data()
    dm.setup()
    return dm


def _split_of(dm: FolderDataModule, written, split: str) -> np.ndarray:
    """Positions (in the written, sorted order) of the images in ``split``, found by their pixels."""
    position = {image.tobytes(): i for i, image in enumerate(written.images["all"])}
    dataset = dm.train_set if split == "train" else dm.val_set
    return np.asarray([position[image.tobytes()] for image in np.asarray(dataset.images)])


def test_class_subfolders_give_class_indices_and_exact_pixels(tmp_path, make_folder):
    written = make_folder(tmp_path / "pets")
    dm = _setup(tmp_path / "pets", tmp_path)
    assert len(dm.train_set) == 24 and len(dm.val_set) == 6
    for split, dataset in (("train", dm.train_set), ("val", dm.val_set)):
        positions = _split_of(dm, written, split)
        assert (np.diff(positions) > 0).all()  # each split keeps the sorted file order
        np.testing.assert_array_equal(dataset.labels, written.labels["all"][positions])
    assert set(dm.train_set.labels.tolist()) <= {0, 1, 2}
    assert sorted([*_split_of(dm, written, "train"), *_split_of(dm, written, "val")]) == list(range(30))


def test_split_is_deterministic_and_follows_split_seed_only(tmp_path, make_folder):
    written = make_folder(tmp_path / "pets")
    a = _setup(tmp_path / "pets", tmp_path)
    b = _setup(tmp_path / "pets", tmp_path / "other_cache_root")
    c = _setup(tmp_path / "pets", tmp_path, split_seed=1)
    np.testing.assert_array_equal(_split_of(a, written, "val"), _split_of(b, written, "val"))
    assert set(_split_of(a, written, "val")) != set(_split_of(c, written, "val"))


def test_flat_folder_has_one_class_and_non_square_images_are_center_cropped(tmp_path, make_folder):
    written = make_folder(tmp_path / "flat", classes=(), per_class=6, size=(36, 24))
    dm = _setup(tmp_path / "flat", tmp_path, num_classes=1)
    assert dm.num_classes == 1
    assert (dm.train_set.labels == 0).all() and (dm.val_set.labels == 0).all()
    # The shorter side is already 24: no resampling, just the central 24 columns.
    cropped = written.images["all"][:, :, :, 6:30]
    position = {image.tobytes(): i for i, image in enumerate(cropped)}
    assert sorted(position[im.tobytes()] for im in [*dm.train_set.images, *dm.val_set.images]) == list(range(6))


def test_resize_and_grayscale_match_pil(tmp_path, make_folder):
    written = make_folder(tmp_path / "flat", classes=(), per_class=4, size=(30, 20))
    dm = _setup(tmp_path / "flat", tmp_path, num_classes=1, img_size=12, channels=1, val_fraction=0.25, batch_size=2)
    expected = []
    for path in written.files["all"]:
        resized = Image.open(path).convert("L").resize((18, 12), Image.Resampling.BICUBIC)  # shorter side 20 -> 12
        expected.append(np.asarray(resized)[None, :, 3:15])
    expected = np.stack(expected)
    got = np.concatenate([dm.train_set.images, dm.val_set.images])
    assert got.shape == (4, 1, 12, 12)
    assert sorted(im.tobytes() for im in got) == sorted(im.tobytes() for im in expected)


def test_class_subfolders_false_takes_every_image_below_as_one_class(tmp_path, make_folder):
    make_folder(tmp_path / "ffhq_like", classes=("00000", "01000"), per_class=5)
    (tmp_path / "ffhq_like" / ".ipynb_checkpoints").mkdir()
    Image.new("RGB", (24, 24)).save(tmp_path / "ffhq_like" / ".ipynb_checkpoints" / "copy.png")
    dm = _setup(tmp_path / "ffhq_like", tmp_path, class_subfolders=False, num_classes=1)
    assert len(dm.train_set) + len(dm.val_set) == 10
    assert (dm.train_set.labels == 0).all()


def test_jpeg_and_mixed_case_extensions_are_read(tmp_path, make_folder):
    make_folder(tmp_path / "pics", classes=(), per_class=4)
    jpeg = tmp_path / "pics" / "photo.JPG"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(jpeg, format="JPEG")
    dm = _setup(tmp_path / "pics", tmp_path, num_classes=1, val_fraction=0.2)
    got = np.concatenate([dm.train_set.images, dm.val_set.images])
    assert len(got) == 5
    expected = np.asarray(Image.open(jpeg).convert("RGB")).transpose(2, 0, 1)
    assert sum(np.array_equal(image, expected) for image in got) == 1


def test_decoding_in_worker_processes_gives_the_same_arrays(tmp_path, make_folder):
    make_folder(tmp_path / "pets")
    serial = _setup(tmp_path / "pets", tmp_path / "a")
    parallel = _setup(tmp_path / "pets", tmp_path / "b", decode_workers=2)
    np.testing.assert_array_equal(serial.train_set.images, parallel.train_set.images)


def test_batches_are_in_unit_range(tmp_path, make_folder):
    make_folder(tmp_path / "pets")
    dm = _setup(tmp_path / "pets", tmp_path)
    images, labels = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert images.shape == (4, 3, 24, 24) and images.dtype == torch.float32
    assert -1 <= images.min() < 0 < images.max() <= 1
    assert labels.dtype == torch.int64 and labels.shape == (4,)


def test_empty_folder_names_the_folder_and_the_extensions(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(FileNotFoundError) as error:
        _setup(tmp_path / "empty", tmp_path, num_classes=1)
    message = str(error.value)
    assert f"found 0 images in {tmp_path / 'empty'}" in message
    assert ".png" in message and ".jpg" in message


def test_empty_class_subfolder_is_named(tmp_path, make_folder):
    make_folder(tmp_path / "pets")
    (tmp_path / "pets" / "fox").mkdir()
    with pytest.raises(FileNotFoundError, match="fox") as error:
        _setup(tmp_path / "pets", tmp_path, num_classes=4)
    assert str(tmp_path / "pets") in str(error.value) and "data.class_subfolders=false" in str(error.value)


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.path=.*nowhere is not a directory"):
        _setup(tmp_path / "nowhere", tmp_path)


def test_num_classes_must_match_the_subfolders(tmp_path, make_folder):
    make_folder(tmp_path / "pets")
    with pytest.raises(
        ValueError, match=r"has 3 classes \(cat, dog, eel\), but data.num_classes=1; set data.num_classes=3"
    ):
        _setup(tmp_path / "pets", tmp_path, num_classes=1)


def test_unreadable_image_is_named(tmp_path, make_folder):
    written = make_folder(tmp_path / "pets")
    bad = written.files["all"][7]
    bad.write_bytes(b"this is not a png")
    with pytest.raises(ValueError, match="cannot decode image") as error:
        _setup(tmp_path / "pets", tmp_path)
    assert str(bad) in str(error.value)


@pytest.mark.parametrize(
    "kwargs,message",
    [({"val_fraction": 0.0}, "val_fraction"), ({"img_size": 0}, "data.img_size"), ({"channels": 4}, "data.channels")],
)
def test_bad_settings_fail_at_construction(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        _module(tmp_path, tmp_path, **kwargs)
