"""Which checkpoints of a run are intact: checked before any is read, and the newest intact one for a resume.

Every checkpoint ``write_atomically`` writes is sealed with the SHA-256 of its bytes (``parti_exp.runtime.integrity``).
Reading one that no longer matches (bits flipped on a shared file system, a file cut short by a copy) fails before
unpickling, naming the file, what is wrong with it, and the newest checkpoint beside it that is intact. A checkpoint
written before checksums existed has nothing to check against: it loads, with one warning.

A file is checked once per process while its size, modification time and inode stay the same: a resume reads its
checkpoint three times (the setup check, the log position, Lightning's load).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from parti_exp.errors import BadCheckpointError
from parti_exp.runtime.integrity import UNSEALED, Verdict, check_sealed

log = logging.getLogger(__name__)

# (path, size, mtime_ns, inode) -> verdict, for the files this process checked.
_checked: dict[tuple[str, int, int, int], Verdict] = {}


class DamagedCheckpointError(BadCheckpointError):
    """A checkpoint whose bytes are not those it was written with (cut short, or changed afterwards)."""


def checkpoint_verdict(path: str | Path) -> Verdict:
    """Whether the checkpoint at ``path`` is intact (``integrity.check_sealed``), remembered while the file is
    unchanged; warns once per file written without a checksum."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _checked:
        verdict = check_sealed(path)
        if verdict == UNSEALED:  # a complete archive without checksum (not: no archive at all, its loader says)
            log.warning("%s has no checksum (written by an older parti_exp or another tool): loaded without an "
                        "integrity check", path)
        _checked[key] = verdict
    return _checked[key]


def run_checkpoints(directory: str | Path) -> list[Path]:
    """The ``.ckpt`` files of a checkpoints directory, newest first (``last.ckpt`` first among equal times)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    files = [path for path in directory.glob("*.ckpt") if path.is_file()]
    return sorted(files, key=lambda path: (path.stat().st_mtime_ns, path.name == "last.ckpt"), reverse=True)


def newest_intact(directory: str | Path, skip: Path | None = None) -> Path | None:
    """The newest checkpoint of ``directory`` that is not damaged (``skip`` excluded), or None; each damaged one
    passed over is reported with a warning."""
    for path in run_checkpoints(directory):
        if skip is not None and path.resolve() == skip.resolve():
            continue
        verdict = checkpoint_verdict(path)
        # Only archives are candidates: a file that is none (cut to nothing by a crash) would stop the resume.
        if verdict.ok or verdict == UNSEALED:
            return path
        log.warning("skipping the damaged checkpoint %s: %s", path, verdict.problem)
    return None


def verify_checkpoint(path: str | Path, key: str = "ckpt_path") -> None:
    """DamagedCheckpointError, naming an intact checkpoint beside it, when ``path`` is damaged."""
    path = Path(path)
    verdict = checkpoint_verdict(path)
    if not verdict.damaged:
        return
    intact = newest_intact(path.parent, skip=path)
    instead = (f"the newest intact checkpoint of this run is {intact} (ckpt_path={intact})" if intact is not None
               else f"no other checkpoint in {path.parent} is intact")
    raise DamagedCheckpointError(f"{key}={path} is damaged: {verdict.problem}. It was not loaded; {instead}")


def auto_checkpoint(output_dir: str | Path) -> Path | None:
    """``ckpt_path=auto``: the newest intact checkpoint of the run directory, or None (a fresh start)."""
    directory = Path(output_dir) / "checkpoints"
    found = newest_intact(directory)
    if found is None:
        had = run_checkpoints(directory)
        log.info("ckpt_path=auto: %s in %s, starting a new run",
                 "no intact checkpoint" if had else "no checkpoint", directory)
    return found


def restarted_by_launcher() -> int:
    """How many times torchrun restarted this worker group (0 outside torchrun)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
