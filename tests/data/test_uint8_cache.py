import os
import shutil

import numpy as np
import pytest

from parti_exp.data.uint8_cache import CacheNotWritableError, UInt8Cache, entry_name, fingerprint


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 4, 5), dtype=np.uint8)


def test_build_then_load_returns_the_written_arrays_as_a_memmap(tmp_path):
    cache = UInt8Cache(tmp_path / "cache")
    images, labels = _images(10), np.arange(10, dtype=np.int64)
    assert cache.load("entry") is None

    built_images, built_labels = cache.build("entry", labels, (3, 4, 5), [images[:4], images[4:]])
    loaded_images, loaded_labels = cache.load("entry")

    for got in (built_images, loaded_images):
        assert isinstance(got, np.memmap) and got.mode == "r"
        np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(built_labels, labels)
    np.testing.assert_array_equal(loaded_labels, labels)
    assert loaded_labels.dtype == np.int64
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["entry.images.npy", "entry.labels.npy"]


def test_interrupted_build_leaves_no_entry_and_no_temp_files(tmp_path):
    cache = UInt8Cache(tmp_path)

    def chunks():
        yield _images(4)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.build("entry", np.zeros(8, np.int64), (3, 4, 5), chunks())
    assert cache.load("entry") is None
    assert list(tmp_path.iterdir()) == []


def test_build_rejects_chunks_that_do_not_match_the_labels_or_the_shape(tmp_path):
    cache = UInt8Cache(tmp_path)
    with pytest.raises(ValueError, match="decoded 4 images for 8 labels"):
        cache.build("entry", np.zeros(8, np.int64), (3, 4, 5), [_images(4)])
    with pytest.raises(ValueError, match="expected uint8 n x 3 x 4 x 6"):
        cache.build("entry", np.zeros(4, np.int64), (3, 4, 6), [_images(4)])
    with pytest.raises(ValueError, match="float32"):
        cache.build("entry", np.zeros(4, np.int64), (3, 4, 5), [_images(4).astype(np.float32)])
    assert list(tmp_path.iterdir()) == []


def test_unwritable_cache_dir_names_the_directory_and_the_options(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    cache = UInt8Cache(blocker / "cache")
    with pytest.raises(CacheNotWritableError) as error:
        cache.build("entry", np.zeros(2, np.int64), (3, 4, 5), [_images(2)])
    message = str(error.value)
    assert str(blocker / "cache") in message
    assert "data.cache_dir=" in message and "paths.data_dir=" in message


def test_entry_name_is_readable_and_changes_with_every_setting_and_the_sources():
    base = entry_name("celeba", "train", {"img_size": 64, "channels": 3, "crop": 108}, "f" * 64)
    assert base.startswith("celeba-train-img_size64-channels3-crop108-")
    assert entry_name("celeba", "train", {"img_size": 64, "channels": 3, "crop": 108}, "f" * 64) == base
    others = [
        entry_name("celeba", "val", {"img_size": 64, "channels": 3, "crop": 108}, "f" * 64),
        entry_name("celeba", "train", {"img_size": 32, "channels": 3, "crop": 108}, "f" * 64),
        entry_name("celeba", "train", {"img_size": 64, "channels": 1, "crop": 108}, "f" * 64),
        entry_name("celeba", "train", {"img_size": 64, "channels": 3, "crop": 140}, "f" * 64),
        entry_name("celeba", "train", {"img_size": 64, "channels": 3, "crop": 108}, "e" * 64),
        entry_name("cifar10", "train", {"img_size": 64, "channels": 3, "crop": 108}, "f" * 64),
    ]
    assert len({base, *others}) == 1 + len(others)
    # Non-integer settings (class lists) change the hash without bloating the name.
    with_classes = entry_name("folder", "train", {"img_size": 64, "classes": ["a", "b"]}, "f" * 64)
    assert with_classes != entry_name("folder", "train", {"img_size": 64, "classes": ["a", "c"]}, "f" * 64)
    assert "classes" not in with_classes


def test_fingerprint_follows_names_sizes_and_mtimes_but_not_the_location(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    files = [data / "a.bin", data / "b.bin"]
    for f in files:
        f.write_bytes(b"1234")
    original = fingerprint(data, files)
    assert fingerprint(data, files) == original

    moved = tmp_path / "moved"
    shutil.copytree(data, moved)  # copy2 keeps mtimes
    assert fingerprint(moved, [moved / "a.bin", moved / "b.bin"]) == original

    files[1].write_bytes(b"12345")
    resized = fingerprint(data, files)
    assert resized != original

    stat = files[1].stat()
    os.utime(files[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert fingerprint(data, files) not in (original, resized)

    assert fingerprint(data, files[:1]) != fingerprint(data, files)
