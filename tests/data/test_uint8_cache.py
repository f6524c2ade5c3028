import fcntl
import hashlib
import multiprocessing
import os
import shutil
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from queue import Queue

import numpy as np
import pytest

from parti_exp.data.cached import CachedImageDataModule, DecodedSplit, SourceFiles
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
    entry_files = ["entry.images.npy", "entry.labels.npy", "entry.sha256"]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == entry_files


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


def test_skipped_images_drop_their_labels_and_the_header_counts_what_was_written(tmp_path):
    cache = UInt8Cache(tmp_path)
    images, labels = _images(10), np.arange(10, dtype=np.int64)
    kept = [i for i in range(10) if i not in (2, 5)]
    built_images, built_labels = cache.build("entry", labels, (3, 4, 5), [images[kept[:4]], images[kept[4:]]], [2, 5])
    loaded_images, loaded_labels = cache.load("entry")
    assert loaded_images.shape == (8, 3, 4, 5)
    np.testing.assert_array_equal(loaded_images, images[kept])
    np.testing.assert_array_equal(loaded_labels, kept)
    np.testing.assert_array_equal(built_labels, kept)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry.images.npy", "entry.labels.npy", "entry.sha256"]


def test_the_build_lock_is_released_when_its_holder_fails(tmp_path):
    cache = UInt8Cache(tmp_path)
    lock_file = tmp_path / ".entry.lock"

    def locked_by_someone() -> bool:
        descriptor = os.open(lock_file, os.O_RDWR)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(descriptor)

    with pytest.raises(KeyboardInterrupt):
        with cache.building("entry"):
            assert locked_by_someone()
            raise KeyboardInterrupt
    assert not locked_by_someone()


class SlowSource(CachedImageDataModule):
    """One tiny split whose decoding takes a while and writes a line to ``builds`` each time it runs."""

    name = "slow"

    def __init__(self, root: Path, builds: Path) -> None:
        super().__init__(root, img_size=4, channels=3, num_classes=1, batch_size=1, num_workers=0, hflip=False,
                         cache_dir=None)
        self.builds = builds

    def ensure_source(self) -> None:
        pass

    def source_files(self, split: str) -> SourceFiles:
        return SourceFiles(self.root, [self.root / "source.bin"])

    def decode(self, split: str) -> DecodedSplit:
        with open(self.builds, "a") as log:
            log.write(f"{os.getpid()}\n")
        time.sleep(1.0)  # long enough for the other processes to find the entry missing and wait
        images = np.random.default_rng(0).integers(0, 256, size=(6, 3, 4, 4), dtype=np.uint8)
        return DecodedSplit(np.arange(6), [images])


def _load_split(root: Path, builds: Path, start: Barrier, results: Queue) -> None:
    datamodule = SlowSource(root, builds)
    start.wait()
    dataset = datamodule.load_split("train")
    results.put((hashlib.sha256(np.asarray(dataset.images).tobytes()).hexdigest(), dataset.labels.tolist()))


def test_three_processes_wanting_the_same_entry_build_it_once(tmp_path):
    (tmp_path / "source.bin").write_bytes(b"data")
    builds = tmp_path / "builds.txt"
    context = multiprocessing.get_context("fork")  # the children only run numpy and file locks
    start, results = context.Barrier(3), context.Queue()
    processes = [context.Process(target=_load_split, args=(tmp_path, builds, start, results)) for _ in range(3)]
    for process in processes:
        process.start()
    loaded = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert len(builds.read_text().splitlines()) == 1
    expected = np.random.default_rng(0).integers(0, 256, size=(6, 3, 4, 4), dtype=np.uint8)
    assert loaded == [(hashlib.sha256(expected.tobytes()).hexdigest(), list(range(6)))] * 3
