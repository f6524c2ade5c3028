"""When an epoch-end callback (grids, metrics, caption accuracy) does its work: one rule for all of them."""

from __future__ import annotations

from lightning.pytorch import Trainer

from parti_exp.runtime.validation import is_int_at_least, require


def check_every_n_epochs(owner: str, every_n_epochs: int) -> None:
    require(is_int_at_least(every_n_epochs, 1), f"{owner}.every_n_epochs",
            f"must be an integer >= 1, got {every_n_epochs!r}")


def due_this_epoch(trainer: Trainer, every_n_epochs: int) -> bool:
    """True at the end of every ``every_n_epochs``-th epoch, and in a ``fast_dev_run`` (which exists to run every
    callback once); never during the sanity check, whose validation pass is not an epoch of training."""
    if trainer.sanity_checking:
        return False
    return bool(trainer.fast_dev_run) or (trainer.current_epoch + 1) % every_n_epochs == 0


def logged_this_step(trainer: Trainer) -> bool:
    """True on the training steps whose logged values reach the loggers (every ``trainer.log_every_n_steps``, counted
    over the whole run as Lightning counts). A value logged on another step is collected and then dropped: logging
    only on these steps saves that per-step work, and readers of ``callback_metrics`` look on the same steps."""
    # Lightning's own rule (LoggerConnector.should_update_logs), the same one it applies when it writes the logs; a
    # fast_dev_run (which writes no logs) logs every step, to run every logging path once
    return bool(trainer.fast_dev_run) or trainer._logger_connector.should_update_logs
