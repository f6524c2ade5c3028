"""The one place where a config becomes an object (``hydra.utils.instantiate``), so that every caller (the
builders, checkpoint loading, the text-to-image module's tokenizer) gets the same error handling."""

from __future__ import annotations

from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import OmegaConf

from parti_exp.errors import ConfigError, UserError
from parti_exp.runtime.moved_targets import moved_targets_in

# Errors our constructors raise on purpose, with messages written for the user, and the built-in types a constructor
# raises for a bad argument: shown as they are.
USER_ERRORS = (UserError, ValueError, TypeError, FileNotFoundError, NotADirectoryError, PermissionError)


def instantiate(config, *args, **kwargs):
    """``hydra.utils.instantiate``, but a constructor's own validation error reaches the user unwrapped instead of
    inside Hydra's "Error in call to target ..." with the config dumped after it, and a ``_target_`` that names one
    of our classes by a path it has moved from is refused with its new path."""
    try:
        return hydra_instantiate(config, *args, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, USER_ERRORS):
            raise error.__cause__ from None
        plain = OmegaConf.to_container(config, resolve=False) if OmegaConf.is_config(config) else config
        moved = moved_targets_in(plain)
        if moved:
            listed = "; ".join(f"_target_: {old} is now _target_: {new}" for old, new in moved)
            raise ConfigError(f"a config names classes of parti_exp by paths they have moved from ({listed}): "
                              "write the new paths in your config file") from None
        raise
