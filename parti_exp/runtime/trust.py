"""What a checkpoint from a stranger may make us do, and the one flag that loosens it (``trust_checkpoint=true``).

A checkpoint is data. It is unpickled with ``weights_only=True`` (``parti_exp.runtime.checkpoints``), and the run config
stored in it is checked here before anything is built from it: each ``_target_`` must name a class defined under
``ALLOWED_TARGET_MODULES``. A function (``shutil.copyfile``, ``os.system``) is never a model, a dataset or a metric,
and a class is judged by the module that defines it, so a path that only passes through one of ours
(``parti_exp.runtime.checkpoints.io.FileIO``) is refused too.

The flag comes only from what the user typed: the entry points set it for the duration of their work with
``trusting_checkpoints``, and code that reads a checkpoint asks ``checkpoints_trusted()``. It is ambient rather than
an argument because one of the readers runs inside a constructor Hydra calls (the text-to-image model reads its
image tokenizer's checkpoint), and a value inside the model's config would let a checkpoint grant itself trust.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

import yaml
from hydra._internal.utils import _locate

from parti_exp.errors import UntrustedCheckpointError

# Where the classes our configs build live: our own, torch's optimizers, schedulers and layers, Lightning's trainer,
# callbacks and loggers (stored with the run config, never built from a checkpoint, but part of every one).
ALLOWED_TARGET_MODULES = ("parti_exp", "torch.optim", "torch.nn", "lightning.pytorch")

TRUST_REMEDY = (
    "If you trust the source of this file, pass trust_checkpoint=true to load it as it is (full pickle, any "
    "_target_): that runs whatever code it holds."
)

_trusted: ContextVar[bool] = ContextVar("trust_checkpoint", default=False)


@contextmanager
def trusting_checkpoints(trusted: bool) -> Iterator[None]:
    """Within this block, checkpoints load with full pickle and stored configs build any ``_target_`` if
    ``trusted`` (the user's ``trust_checkpoint``)."""
    if not isinstance(trusted, bool):
        # A string "false" would be truthy: only a real boolean may switch the checks off.
        raise UntrustedCheckpointError(f"trust_checkpoint must be true or false, got {trusted!r}")
    token = _trusted.set(trusted)
    try:
        yield
    finally:
        _trusted.reset(token)


def checkpoints_trusted() -> bool:
    return _trusted.get()


def _under_allowed(module: str) -> bool:
    return any(module == allowed or module.startswith(allowed + ".") for allowed in ALLOWED_TARGET_MODULES)


def target_refusal(target: Any) -> str | None:
    """Why ``target`` may not be built from a stored config, or None when it may."""
    if not isinstance(target, str) or not _under_allowed(target):
        return f"it is not under {', '.join(ALLOWED_TARGET_MODULES)}"
    try:
        # The resolver instantiate itself uses, so the check judges the object that would be built. It imports only
        # prefixes of the path, all under the allowed packages.
        obj = _locate(target)
    except (ImportError, ValueError):
        return "no such class exists"
    if not inspect.isclass(obj):
        return f"it is a {type(obj).__name__}, not a class"
    if not _under_allowed(obj.__module__):
        return f"it is {obj.__module__}.{obj.__qualname__}, defined outside {', '.join(ALLOWED_TARGET_MODULES)}"
    return None


def _targets(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """(config key, value) of every ``_target_`` in ``node``, also inside YAML text that holds one (a module may
    record a nested config as text so that Hydra does not build it before the module sees it)."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{where}.{key}" if where else str(key)
            if key == "_target_":
                yield path, value
            else:
                yield from _targets(value, path)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _targets(value, f"{where}[{index}]")
    elif isinstance(node, str) and "_target_" in node:
        try:
            parsed = yaml.safe_load(node)
        except yaml.YAMLError:
            return  # text that is not YAML cannot be built either
        if isinstance(parsed, (dict, list)):
            yield from _targets(parsed, where)


def check_stored_targets(config: dict, source: str) -> None:
    """Refuse a stored config with a ``_target_`` outside the allow-list, naming its key and value; ``source`` says
    where the config comes from (``ckpt_path=...``). Nothing is checked when the user trusts checkpoints."""
    if checkpoints_trusted():
        return
    for key, target in _targets(config, ""):
        reason = target_refusal(target)
        if reason is not None:
            raise UntrustedCheckpointError(
                f"{source}: its stored config sets {key}={target!r}, which is not built from a checkpoint ({reason}; "
                f"only classes of {', '.join(ALLOWED_TARGET_MODULES)} are). A checkpoint's config is data, not code. "
                + TRUST_REMEDY
            )
