"""Errors written for the user, told apart from bugs by their class.

Every error we raise on purpose, with a message that says what was wrong and what to do (missing data or weights,
a bad config value, a bad or untrusted checkpoint, a service that cannot be used), is a ``UserError``. The
command line prints such an error as its message alone and exits with code 1; ``HYDRA_FULL_ERROR=1`` shows its
traceback. Any other exception is a bug and keeps its traceback.

``UserError`` is Hydra's ``CompactHydraException``: Hydra's own error report (``hydra.main``) already prints those
as their message, so this holds for every entry point, in single runs and multiruns, also when the error is raised
inside a Lightning hook (Lightning re-raises the hook's exception as it is). Each concrete class also derives from
the built-in type callers already catch (``ValueError``, ``FileNotFoundError``, ...).
"""

from __future__ import annotations

from hydra.errors import CompactHydraException


class UserError(CompactHydraException):
    """An error whose message is all the user needs: printed without a traceback."""


class ConfigError(UserError, ValueError):
    """A config value no run can use, or one that does not fit the data, the checkpoint or the model."""


class MissingInputError(UserError, FileNotFoundError):
    """A file or directory the run needs (data, weights, a checkpoint) is not there."""


class UnavailableError(UserError, RuntimeError):
    """Something the run needs is not available on this machine: a GPU, a logging service."""


class BadCheckpointError(UserError, ValueError):
    """A file given as a checkpoint cannot be used as one: unreadable, foreign, or trained for another setup."""


class UntrustedCheckpointError(BadCheckpointError):
    """A checkpoint that would need more than data to load (pickled objects, a config building arbitrary code)."""


class BadDataError(UserError, ValueError):
    """A data file that cannot be read as what it should be: a corrupt or oversized image, a damaged dataset file."""
