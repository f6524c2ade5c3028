"""Content checksums for the files a run writes and later trusts: checkpoints, the decoded-image cache, the metrics'
caches. One digest (SHA-256 of the bytes), one verdict type, two carriers:

- A ``torch.save`` file (a checkpoint, a metrics cache entry) is a zip archive: its digest goes in the archive's
  comment (``seal``), the field the zip format keeps at the very end for free text. The file stays one file, written
  by one ``os.replace``, so no moment exists where content and checksum disagree; a copied or moved checkpoint
  carries its checksum along; ``torch.load``, ``zipfile`` and any other zip reader read it unchanged. A sidecar file
  would need a second rename (a kill between the two leaves a good file "damaged") and would be left behind by
  Lightning when it deletes old checkpoints.
- A ``.npy`` file (the uint8 cache) has no free field that ``np.load`` tolerates: its digest goes in a small JSON
  manifest beside it (``write_manifest``), renamed into place before the data file, whose presence marks the entry
  complete.

SHA-256 catches what a shared file system does to files (truncation, flipped bits, a block of zeros), which the zip
reader does not: PyTorch reads tensor bytes without checking the CRC-32 the archive holds. Verifying reads and hashes
every byte once, about as long as ``torch.load`` takes to read the file (scripts/bench_integrity.py,
docs/benchmarks.md): a checkpoint is checked once per process each time it changes, a cache entry each time it is
opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The zip archive's comment that carries the digest: this prefix, then 64 hex digits.
SEAL_PREFIX = b"parti_exp-sha256:"
_SEAL_LENGTH = len(SEAL_PREFIX) + 64
# End of central directory record: 22 bytes, ending with the comment's length (2 bytes, little endian).
_EOCD_SIGNATURE = b"PK\x05\x06"
_EOCD_SIZE = 22
_CHUNK = 2**24


@dataclass(frozen=True)
class Verdict:
    """What checking a file found: ``ok`` (its digest matches), ``unsealed`` (written before checksums, or by
    another tool: nothing to check against), or damaged, with ``problem`` saying how."""

    ok: bool
    unsealed: bool = False
    problem: str = ""

    @property
    def damaged(self) -> bool:
        return not self.ok and not self.unsealed


OK = Verdict(True)
UNSEALED = Verdict(False, unsealed=True)
# Not a zip archive at all (a legacy torch.save file, or no checkpoint): nothing to check, its reader decides.
NOT_AN_ARCHIVE = Verdict(False, unsealed=True, problem="not a zip archive")
_LOCAL_HEADER = b"PK\x03\x04"


def _digest_of(file, length: int) -> Any:
    """A SHA-256 object fed with the next ``length`` bytes of an open binary file (fewer if the file ends)."""
    digest = hashlib.sha256()
    while length > 0:
        chunk = file.read(min(_CHUNK, length))
        if not chunk:
            break
        digest.update(chunk)
        length -= len(chunk)
    return digest


def file_digest(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    with open(path, "rb") as file:
        return _digest_of(file, os.fstat(file.fileno()).st_size).hexdigest()


def seal(archive: bytes | memoryview) -> bytes:
    """A ``torch.save`` archive with the SHA-256 of its bytes stored as its zip comment."""
    archive = bytes(archive)
    if archive[-_EOCD_SIZE : -_EOCD_SIZE + 4] != _EOCD_SIGNATURE or archive[-2:] != b"\0\0":
        raise ValueError("not a zip archive without comment (torch.save's format changed?)")
    comment = SEAL_PREFIX + hashlib.sha256(archive).hexdigest().encode()
    return archive[:-2] + struct.pack("<H", len(comment)) + comment


def check_sealed(path: str | Path) -> Verdict:
    """Whether a file written by ``seal`` still holds the bytes it was sealed with."""
    with open(path, "rb") as file:
        if file.read(4) != _LOCAL_HEADER:
            return NOT_AN_ARCHIVE
        size = os.fstat(file.fileno()).st_size
        file.seek(max(0, size - _SEAL_LENGTH - _EOCD_SIZE))
        tail = file.read()
        eocd, comment = tail[:_EOCD_SIZE], tail[_EOCD_SIZE:]
        if eocd[:4] != _EOCD_SIGNATURE or not comment.startswith(SEAL_PREFIX):
            if tail[-_EOCD_SIZE:][:4] == _EOCD_SIGNATURE and tail[-2:] == b"\0\0":
                return UNSEALED  # a complete archive without our comment
            return Verdict(False, problem=f"truncated or overwritten at its end ({size} bytes, and no zip end "
                                          "record where a complete file has one)")
        expected = comment[len(SEAL_PREFIX) :].decode("ascii", "replace")
        # The digest was taken over the archive as torch.save wrote it: comment length 0, no comment.
        file.seek(0)
        digest = _digest_of(file, size - _SEAL_LENGTH - 2)
        digest.update(b"\0\0")
        if digest.hexdigest() != expected:
            return Verdict(False, problem=f"its content does not match the SHA-256 stored in it ({size} bytes; "
                                          "bytes were changed after it was written)")
    return OK


def write_manifest(manifest: Path, files: dict[str, Path]) -> None:
    """Record the SHA-256 of each file (by role, e.g. ``images``) in ``manifest``, atomically (temp + rename)."""
    temp = manifest.with_name(f".{manifest.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(json.dumps({role: file_digest(path) for role, path in files.items()}, sort_keys=True))
        os.replace(temp, manifest)
    finally:
        temp.unlink(missing_ok=True)


def check_manifest(manifest: Path, files: dict[str, Path]) -> Verdict:
    """Whether ``files`` still hold the bytes ``write_manifest`` recorded for them."""
    if not manifest.is_file():
        return UNSEALED
    try:
        recorded = json.loads(manifest.read_text())
    except (OSError, ValueError) as error:
        return Verdict(False, problem=f"its checksum file {manifest.name} is unreadable ({error})")
    for role, path in files.items():
        if not path.is_file():
            return Verdict(False, problem=f"{path.name} is missing")
        if recorded.get(role) != file_digest(path):
            return Verdict(False, problem=f"{path.name} does not match its recorded SHA-256 "
                                          f"({path.stat().st_size} bytes; changed or cut short after it was written)")
    return OK
