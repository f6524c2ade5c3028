"""A logger whose service fails mid-run (a W&B server gone, a TensorBoard directory on a full or vanished mount) does
not end a training run that may have days left: the failure is reported once and the run goes on. The CSV logger
keeps the full record in the run directory (its failures, a full or read-only disk, still stop the run: they are
the run directory's own). TensorBoard stops logging for the rest of the run. W&B switches to an offline run in the
run directory, which ``wandb sync --id <the online run's id>`` uploads into the online run later; only if that also
fails does it stop logging.

The guard is installed on each logger instance (``keep_running_without``): Lightning calls ``log_metrics``,
``log_hyperparams``, ``save`` and ``finalize`` on the instance, and our ``log_image`` calls ``guarded``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger

log = logging.getLogger(__name__)

GUARDED_METHODS = ("log_metrics", "log_hyperparams", "save", "finalize")
# The loggers that failed for good (ids: Lightning's loggers are not hashable by value) and the W&B ones already
# switched offline.
_stopped: set[int] = set()
_switched: set[int] = set()


def keep_running_without(logger: Logger) -> Logger:
    """Install the guard on ``logger``'s methods (not on the CSV logger: it is the run's own record)."""
    if isinstance(logger, CSVLogger):
        return logger
    for name in GUARDED_METHODS:
        method = getattr(logger, name)
        # An instance attribute shadows the class's method: isinstance checks on the logger still hold.
        setattr(logger, name, lambda *args, _method=method, _name=name, **kwargs: guarded(
            logger, _name, lambda: _method(*args, **kwargs)))
    return logger


def guarded(logger: Logger, what: str, call: Callable[[], Any]) -> Any:
    """``call()``, a use of ``logger``; if it raises, warn once and go on without the logger (W&B: offline)."""
    if id(logger) in _stopped:
        return None
    try:
        return call()
    except Exception as error:  # any failure of a service that only records the run
        if isinstance(logger, WandbLogger) and id(logger) not in _switched:
            _switched.add(id(logger))
            try:
                sync = _switch_offline(logger)
                log.warning("W&B failed in %s (%s: %s): the run goes on, logging to W&B offline; upload it into "
                            "the same W&B run when the server is reachable with `%s`", what,
                            type(error).__name__, error, sync)
                return guarded(logger, what, call)
            except Exception as offline_error:  # offline logging failed too: stop logging to W&B
                error = offline_error
        _stopped.add(id(logger))
        log.warning("the %s logger failed in %s (%s: %s): the run goes on without it; the CSV logger keeps the "
                    "record in the run directory", type(logger).__name__, what, type(error).__name__, error)
        return None


def _switch_offline(logger: WandbLogger) -> str:
    """Continue ``logger``'s W&B run in a new offline run in the run directory; the command that uploads it into
    the online run."""
    import wandb

    online_id = logger.version
    # A new run beside the failed one, which is not finished (finishing waits for the server that is gone), under
    # an id of its own: W&B refuses a second run of one id in a process. `wandb sync --id` uploads it into the first.
    settings = {**logger._wandb_init, "mode": "offline", "reinit": "create_new"}
    for key in ("id", "resume"):  # W&B draws a new id
        settings.pop(key, None)
    logger._experiment = wandb.init(**settings)
    return f"wandb sync --id {online_id} {logger._experiment.settings.sync_dir}"
