"""Content fingerprints and atomic writes for the metrics' on-disk caches (real statistics, classifier weights).

A cache file is named by a hash of everything its content depends on, so a changed dataset, split or network
simply misses; files are written to a temporary name and renamed, so a crash or a concurrent run never leaves a
half-written file under the final name. Each file is sealed with the SHA-256 of its bytes
(``parti_exp.runtime.integrity``): one damaged later on the disk is rebuilt, with a warning, instead of read.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from parti_exp.runtime.integrity import check_sealed, seal

log = logging.getLogger(__name__)

# Above this many bytes of images, hash an evenly spaced sample of them: reading a multi-GB memory-mapped split
# (CelebA) at every start would cost seconds, while any real change of a dataset moves the sample too.
FULL_HASH_LIMIT = 256 * 2**20
SAMPLED_IMAGES = 8192


def array_fingerprint(images: np.ndarray, labels: np.ndarray | None = None) -> str:
    """A hex digest of an ``N x C x H x W`` uint8 array (shape, pixels) and its labels."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((images.shape, str(images.dtype))).encode())
    if images.nbytes <= FULL_HASH_LIMIT:
        rows = np.arange(len(images))
    else:
        rows = np.linspace(0, len(images) - 1, SAMPLED_IMAGES).astype(np.int64)
    chunk = max(1, (16 * 2**20) // max(1, images[0].nbytes))
    for start in range(0, len(rows), chunk):
        digest.update(np.ascontiguousarray(images[rows[start : start + chunk]]).tobytes())
    if labels is not None:
        labels = np.asarray(labels)
        digest.update(repr((labels.shape, str(labels.dtype))).encode())
        digest.update(np.ascontiguousarray(labels).tobytes())
    return digest.hexdigest()


def module_fingerprint(module: nn.Module) -> str:
    """A hex digest of a network's class and weights: statistics in its feature space are valid for these only."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(type(module).__qualname__.encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def text_fingerprint(*parts: Any) -> str:
    """A short hex digest of some values' ``repr`` (cache keys made of several fingerprints and settings)."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()


def atomic_save(obj: Any, path: Path) -> Path:
    """``torch.save`` to a temporary file next to ``path``, sealed with its checksum, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(seal(buffer.getbuffer()))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_if_present(path: Path) -> Any | None:
    """The object saved at ``path`` (on the CPU), or None if there is no such file or it is damaged (warned: the
    caller rebuilds it). Files from before checksums load unchecked."""
    if not path.is_file():
        return None
    verdict = check_sealed(path)
    if verdict.damaged:
        log.warning("cache file %s is damaged (%s): rebuilding it", path, verdict.problem)
        return None
    return torch.load(path, map_location="cpu", weights_only=True)
