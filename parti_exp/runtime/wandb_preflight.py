"""W&B checked before a run starts, so that a job that cannot log online stops within seconds, with one message.

Left to itself, ``wandb.init`` in a job without a terminal (SLURM, CI) stops with a ``UsageError`` under a page of
traceback when no API key is configured, and with a key but no route to the server it waits about 100 s before a
``CommError``. Here, before any data is decoded: a job without a key and without a terminal to ask for one, or whose
W&B server does not answer within ``REACH_TIMEOUT_S``, raises ``UnavailableError`` naming the remedies, or, with
``logger.wandb.fallback_offline=true``, logs offline and says so. An error of ``wandb.init`` itself (a key the server
rejects) is reported the same way.
"""

from __future__ import annotations

import logging
import os
import sys

import requests
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from parti_exp.errors import UnavailableError

log = logging.getLogger(__name__)

# Long enough for a slow route to answer, short enough that a job without one fails at once.
REACH_TIMEOUT_S = 5.0
OFFLINE_MODES = ("offline", "dryrun", "disabled")
REMEDY = (
    "To log without network: WANDB_MODE=offline or logger.wandb.offline=true (upload later with `wandb sync "
    "<run dir>/wandb/offline-run-*`). To log online: run `wandb login` (or set WANDB_API_KEY) where the job runs, "
    "on a machine that reaches the server. To fall back to offline logging whenever W&B cannot be reached: "
    "logger.wandb.fallback_offline=true"
)


def _unreachable(url: str) -> str | None:
    """Why ``url`` does not answer, or None if it answers anything (any HTTP status means a route exists)."""
    try:
        # requests honours HTTPS_PROXY as W&B does.
        requests.head(url, timeout=REACH_TIMEOUT_S, allow_redirects=False)
    except requests.RequestException as error:
        # urllib3 keeps the root cause (a failed DNS lookup, a refused or timed-out connection) as the reason.
        reason = getattr(error.args[0], "reason", None) if error.args else None
        return str(reason or error)
    return None


def online_problem() -> str | None:
    """Why W&B cannot log online from this process, or None when it can."""
    import wandb

    base_url = wandb.setup().settings.base_url
    # The route first: with a key, wandb.login asks the server who is logged in, and waits 5 s when it cannot.
    reason = _unreachable(base_url)
    if reason is not None:
        return f"the W&B server {base_url} cannot be reached within {REACH_TIMEOUT_S:g} s ({reason})"
    # Without a key, wandb.init asks for one on a terminal; without a terminal it can only fail.
    if not wandb.login(prompt=False, verify=False) and not sys.stdin.isatty():
        return f"no W&B API key is configured for {base_url}, and this job has no terminal to ask for one"
    return None


def offline_requested(offline: bool) -> bool:
    return offline or os.environ.get("WANDB_MODE", "").lower() in OFFLINE_MODES


def wandb_offline(offline: bool, fallback_offline: bool) -> bool:
    """Whether the W&B logger must log offline: as asked, or because online logging cannot work and the user chose
    ``fallback_offline``. Raises UnavailableError when it cannot work and they did not."""
    # Only rank 0 logs (Lightning gives the other ranks a dummy run): they need no network.
    if offline_requested(offline) or rank_zero_only.rank != 0:
        return offline
    problem = online_problem()
    if problem is None:
        return False
    if fallback_offline:
        log.warning("W&B cannot log online: %s. Logging offline instead (logger.wandb.fallback_offline=true); "
                    "upload later with `wandb sync <run dir>/wandb/offline-run-*`", problem)
        return True
    raise UnavailableError(f"logger=wandb cannot log online: {problem}. {REMEDY}")


def start_run(logger: WandbLogger) -> None:
    """Start the logger's W&B run now, so that a failure of ``wandb.init`` is reported here, before training."""
    import wandb

    try:
        _ = logger.experiment  # the property starts the run (wandb.init)
    except (wandb.errors.Error, TimeoutError) as error:
        raise UnavailableError(f"logger=wandb could not start its run: {error}. {REMEDY}") from error
