"""Decoded datasets on disk: one uint8 ``N x C x H x W`` ``.npy`` per (dataset, split, settings, source files).

Decoding JPEGs or unpickling CIFAR batches is done once; later runs ``np.load(mmap_mode="r")`` the result,
so a 2.5 GB CelebA array is paged in by the OS instead of copied into every process that reads it.

An entry's file name carries a hash of everything that shapes its pixels and labels (the decode settings
and a fingerprint of the source files), so changing a setting or a source file selects a new entry instead
of reading a stale one. Entries are written to a temporary file and renamed into place, so an interrupted
build leaves no entry rather than a corrupt one.

Several processes may want the same missing entry at once (the jobs of a parallel multirun, the DDP ranks of
several nodes on one shared file system). ``building`` holds an exclusive lock on a file beside the entry while one
of them builds it; the others wait for the lock, then find the entry and read it. The operating system releases the
lock when its holder exits, however it exits, so a killed builder never leaves the others waiting.

Each entry's files have their SHA-256 in ``<name>.sha256`` (``parti_exp.runtime.integrity``), renamed into place
before the images file: an entry damaged later on the disk (a flipped bit, a truncated copy) is rebuilt, with a
warning, instead of read. Checking reads the entry once per opening (a few seconds per GB on one core,
docs/benchmarks.md).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from parti_exp.errors import UserError
from parti_exp.runtime.integrity import check_manifest, write_manifest
from parti_exp.runtime.progress import tracked

log = logging.getLogger(__name__)

# Bump when a change to the decoding code changes the pixels of an entry: old entries then stop matching.
CACHE_FORMAT = 1


def fingerprint(base: Path, files: Iterable[Path]) -> str:
    """Hash of the files' names (relative to ``base``), sizes and modification times.

    Cheaper than hashing contents (CelebA is 1.4 GB of JPEGs) and catches the changes that happen in
    practice: files replaced, added, removed or renamed. Relative names keep the cache valid when the
    data directory is moved or mounted elsewhere.
    """
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(base).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def entry_name(dataset: str, split: str, settings: Mapping[str, object], source_fingerprint: str) -> str:
    """``<dataset>-<split>-<int settings>-<hash>``: readable enough to tell entries apart, unique by hash."""
    key = json.dumps(
        {"format": CACHE_FORMAT, "settings": dict(settings), "sources": source_fingerprint},
        sort_keys=True,
    )
    readable = [f"{name}{value}" for name, value in settings.items() if isinstance(value, int)]
    return "-".join([dataset, split, *readable, hashlib.sha256(key.encode()).hexdigest()[:16]])


class CacheNotWritableError(UserError, PermissionError):
    """The cache directory cannot be created or written to."""


class UInt8Cache:
    """A directory of entries; each is ``<name>.images.npy`` (uint8 N x C x H x W) + ``<name>.labels.npy``.

    A subclass may store other arrays the same way (``items``: the file's middle name, ``dtype``: its type)."""

    items = "images"
    dtype = np.dtype(np.uint8)
    activity = "decoding images into"  # what the progress bar of a build says

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory).expanduser()

    def paths(self, name: str) -> tuple[Path, Path]:
        return self.directory / f"{name}.{self.items}.npy", self.directory / f"{name}.labels.npy"

    def manifest(self, name: str) -> Path:
        """The file holding the checksums of entry ``name``."""
        return self.directory / f"{name}.sha256"

    def load(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The entry's images (read-only memmap) and labels (in memory), or None if there is no such entry or it is
        damaged (warned: the caller builds it again). Entries from before checksums are read unchecked."""
        images_path, labels_path = self.paths(name)
        # The images file is renamed into place last, so its presence means the entry is complete.
        if not images_path.exists():
            return None
        verdict = check_manifest(self.manifest(name), {"images": images_path, "labels": labels_path})
        if verdict.damaged:
            log.warning("%s cache entry %s is damaged (%s): building it again", self.items, name, verdict.problem)
            return None
        return np.load(images_path, mmap_mode="r"), np.load(labels_path)

    @contextmanager
    def building(self, name: str) -> Iterator[None]:
        """Hold the lock of entry ``name``: blocks while another process holds it (builds the entry)."""
        lock_path = self.directory / f".{name}.lock"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise CacheNotWritableError(self._not_writable(error)) from error
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("waiting for another process to finish building %s (it holds %s)", name, lock_path)
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            except OSError as error:
                if error.errno not in (errno.ENOLCK, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                # A file system without locks (some network mounts): build without waiting. Concurrent builds
                # still end with one complete entry, as each renames a complete file into place.
                log.warning("cannot lock %s (%s): building %s without waiting for other processes", lock_path,
                            error.strerror, name)
            yield
        finally:
            os.close(descriptor)  # releases the lock

    def build(
        self,
        name: str,
        labels: np.ndarray,
        image_shape: tuple[int, int, int],
        image_chunks: Iterable[np.ndarray],
        skipped: Sequence[int] = (),
    ) -> tuple[np.ndarray, np.ndarray]:
        """Write ``image_chunks`` (uint8 ``n_i x C x H x W`` arrays, one image per label) as entry ``name``.

        Chunks are streamed to disk, so the whole array never has to fit in memory. ``skipped``: the positions of
        the images the chunks leave out (unreadable files, ``data.skip_bad=true``); the decoder fills it while the
        chunks are read, and their labels are dropped once all are written.
        """
        images_path, labels_path = self.paths(name)
        temps = [self._temp_file(name), self._temp_file(name)]
        tmp_images, tmp_labels = temps
        try:
            with open(tmp_images, "wb") as f:
                # Written by hand rather than through np.lib.format.open_memmap: filling a memmap on a
                # full disk kills the process with SIGBUS, a plain write raises a readable OSError.
                _write_header(f, (len(labels), *image_shape), self.dtype)
                header_size = f.tell()
                written = 0
                for chunk in tracked(image_chunks, f"{self.activity} {name}", len(labels), len):
                    if chunk.dtype != self.dtype or tuple(chunk.shape[1:]) != tuple(image_shape):
                        raise ValueError(
                            f"cache entry {name}: a decoded chunk is {chunk.dtype} {chunk.shape}, "
                            f"expected {self.dtype} n x {' x '.join(map(str, image_shape))}"
                        )
                    f.write(np.ascontiguousarray(chunk).data)
                    written += len(chunk)
            if written + len(skipped) != len(labels):
                also = f" and skipped {len(skipped)}" if skipped else ""
                raise ValueError(f"cache entry {name}: decoded {written} images{also} for {len(labels)} labels")
            if skipped:
                labels = np.delete(labels, list(skipped), axis=0)
                # The header promised one image per label: copy the images under a header that counts those written.
                tmp_fixed = self._temp_file(name)
                temps.append(tmp_fixed)
                with open(tmp_images, "rb") as source, open(tmp_fixed, "wb") as target:
                    _write_header(target, (written, *image_shape), self.dtype)
                    source.seek(header_size)
                    shutil.copyfileobj(source, target, 2**24)
                os.replace(tmp_fixed, tmp_images)
                log.warning("cache entry %s: %d images; %d unreadable files skipped (data.skip_bad=true)", name,
                            written, len(skipped))
            with open(tmp_labels, "wb") as f:
                np.save(f, labels)
            # Taken from the temporary files, whose bytes the renames below put in place unchanged.
            write_manifest(self.manifest(name), {"images": tmp_images, "labels": tmp_labels})
            os.replace(tmp_labels, labels_path)
            os.replace(tmp_images, images_path)
        finally:
            for tmp in temps:
                tmp.unlink(missing_ok=True)
        log.info("wrote %s (%.1f MB)", images_path, images_path.stat().st_size / 2**20)
        return np.load(images_path, mmap_mode="r"), labels

    def _temp_file(self, name: str) -> Path:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.directory)
        except OSError as error:
            raise CacheNotWritableError(self._not_writable(error)) from error
        os.close(fd)
        return Path(tmp)

    def _not_writable(self, error: OSError) -> str:
        return (
            f"cannot write the decoded-image cache to {self.directory} ({error}). "
            "Point it at a writable directory with data.cache_dir=/some/writable/dir, "
            "or move the data with paths.data_dir=..."
        )


def _write_header(file, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """The ``.npy`` header of a C-ordered array of ``shape`` and ``dtype``."""
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(file, header)
