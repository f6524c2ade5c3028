"""One way to refuse a setting: ``require(condition, key, message)``, which raises ``ConfigError`` (printed as its
message alone, before anything trains) naming the setting as the user writes it and what it must be."""

from __future__ import annotations

from typing import Any

from parti_exp.errors import ConfigError


def require(condition: bool, key: str, message: str) -> None:
    """Raise ``ConfigError("{key} {message}")`` unless ``condition``: ``key`` is the setting as the user writes it
    (``model.n_critic``), ``message`` what it must be and what it was (``must be an integer >= 1, got 0``)."""
    if not condition:
        raise ConfigError(f"{key} {message}")


def is_int_at_least(value: Any, least: int) -> bool:
    """Whether ``value`` is an integer (a bool counts, as in Python) of at least ``least``."""
    return isinstance(value, int) and value >= least
