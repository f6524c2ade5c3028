"""Folders a run writes to (its output folder, every ``cache_dir`` of the config) must be writable, checked before
anything is built so that a read-only cache is reported with the missing inputs, not after an hour of training."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig, ListConfig, OmegaConf

from parti_exp.errors import MissingInputError


def cache_dirs(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(dotted key, path) of every non-null ``cache_dir`` in the config."""
    if isinstance(node, DictConfig):
        for name in node:
            if OmegaConf.is_missing(node, name):
                continue
            child_key = f"{key}.{name}" if key else str(name)
            value = node.get(name)
            if name == "cache_dir" and isinstance(value, str):
                yield child_key, value
            else:
                yield from cache_dirs(value, child_key)
    elif isinstance(node, ListConfig):
        for index, item in enumerate(node):
            yield from cache_dirs(item, f"{key}[{index}]")


def nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable_dirs(cfg: DictConfig) -> None:
    """One MissingInputError naming every folder the run would fail to create or write into."""
    folders = [("paths.output_dir", cfg.paths.output_dir), *cache_dirs(cfg)]
    problems = []
    for key, folder in folders:
        existing = nearest_existing(Path(folder).absolute())
        if not existing.is_dir():
            problems.append(f"{key}={folder}: {existing} is a file, not a folder")
        elif not os.access(existing, os.W_OK | os.X_OK):
            problems.append(f"{key}={folder}: {existing} is not writable by this user")
    if problems:
        raise MissingInputError(
            "cannot write where this run keeps its outputs and caches:\n"
            + "\n".join(f"  {problem}" for problem in problems)
            + "\nPoint those keys at a folder you can write to (paths.data_dir=... moves every cache)."
        )
