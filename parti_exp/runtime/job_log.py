"""Hydra's job log file (``<run dir>/<task>.log``) holds what the run told the user, errors included.

Hydra points the root logger at the console and at that file. Lightning's loggers do not propagate to the root
(they print through a handler of their own), Python's warnings bypass logging, and an exception that ends the run
is reported by Hydra on stderr only. Inside ``job_log`` all three also reach the file, so a finished batch job's
directory tells its whole story. The console is unchanged apart from warnings, which Hydra's console handler
now prints with its usual prefix.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

# Lightning's top loggers; every Lightning message (rank_zero_info, the fit's status lines) comes from below them.
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")

log = logging.getLogger(__name__)


def _file_handlers() -> list[logging.FileHandler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]


@contextmanager
def job_log() -> Iterator[None]:
    """Within one Hydra job: Lightning's messages, warnings and the error that ends the job also go to the job's
    log file. Entered once per job (a multirun gives each job its own file)."""
    files = _file_handlers()
    lightning = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    for logger in lightning:
        for handler in files:
            logger.addHandler(handler)
    logging.captureWarnings(True)
    try:
        yield
    except BaseException as error:
        # Hydra prints the error to the console itself; writing it to the files alone keeps it shown once there.
        record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s: %s", (type(error).__name__, error), None)
        for handler in files:
            handler.handle(record)
        raise
    finally:
        logging.captureWarnings(False)
        for logger in lightning:
            for handler in files:
                logger.removeHandler(handler)
