"""The version of the code a run trains with: the git commit of the checkout the package is imported from, so that
a checkpoint (and the model card exported from it) says which code made it."""

from __future__ import annotations

import subprocess
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def source_commit() -> str | None:
    """``<commit>`` or ``<commit>-dirty`` (uncommitted changes), or None outside a git checkout (an installed
    wheel) or without git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PACKAGE_DIR, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        changes = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PACKAGE_DIR,
                                 capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if changes else commit
