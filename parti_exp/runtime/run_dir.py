"""A command's run directory that ends up holding nothing of the command's own is not left behind.

Hydra creates the run directory (``.hydra/`` with the composed config, and the job's log file) before the command
runs. When a command that only reads and writes results (evaluate, sample, edit) fails before writing anything,
that directory would be all that is left of it: an empty-looking ``logs/<task>/runs/<date>_<time>/`` per mistyped
path. The console showed the error; the directory goes. A training run keeps its directory and ``train.log``,
which is how a batch job that died tells why.
"""

from __future__ import annotations

import logging
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

HYDRA_SUBDIR = ".hydra"


@contextmanager
def removed_if_failed_empty(run_dir: str | Path, task_name: str) -> Iterator[None]:
    """On an exception, remove ``run_dir`` when it holds only Hydra's files (``.hydra/``, ``<task_name>.log``)."""
    try:
        yield
    except BaseException:
        run_dir = Path(run_dir)
        hydra_only = {HYDRA_SUBDIR, f"{task_name}.log"}
        if run_dir.is_dir() and {entry.name for entry in run_dir.iterdir()} <= hydra_only:
            # The log handlers keep their open files; nothing is written to them after this.
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
