"""Checkpoint files that are either the old one or the new one, never half of either.

Lightning's own save goes through an fsspec transaction, which for local paths writes to a file in the
system temp directory and then *moves* it: across file systems (``/tmp`` and a cluster's scratch space)
that move is a copy, and a job killed during the copy leaves a truncated ``last.ckpt``. Here the bytes go
to a temporary file next to the target, are flushed to disk, and replace the target with ``os.replace``,
which POSIX makes atomic within one directory.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO

TEMP_MARKER = ".partial-"


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the file it would have replaced is untouched."""


def write_atomically(checkpoint: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` to ``path`` via a same-directory temporary file and ``os.replace``."""
    path = Path(path)
    temp = path.with_name(f"{path.name}{TEMP_MARKER}{os.getpid()}")
    # Serialised in memory first: torch.save's zip writer reports a failing write as a RuntimeError about
    # stream positions; a plain write of bytes reports ENOSPC / EROFS as what they are.
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Leftovers of writers that were killed mid-save (their pid is in the name) are garbage.
        for stale in path.parent.glob(f"{path.name}{TEMP_MARKER}*"):
            stale.unlink(missing_ok=True)
        with open(temp, "wb") as file:
            file.write(buffer.getbuffer())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except OSError as error:
        try:
            temp.unlink(missing_ok=True)
        except OSError:  # a read-only file system refuses even that: there is nothing to remove then
            pass
        previous = f"the previous {path.name} is intact" if path.exists() else f"no earlier {path.name} exists"
        raise CheckpointWriteError(
            error.errno,
            f"could not write the checkpoint {path} ({error.strerror or error}); {previous}. Free disk space or "
            "make the directory writable (or set hydra.run.dir to a writable place), then resume from the "
            "last checkpoint with ckpt_path=...",
        ) from error


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose local saves are atomic; remote URLs keep Lightning's own path."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        write_atomically(checkpoint, path)
