"""Checkpoints: what ours hold beyond Lightning's, reading them, resuming from them, writing them.

Every checkpoint written by ``python -m parti_exp.train`` carries the run's resolved config (``CONFIG_KEY``), so
a checkpoint alone rebuilds its model (``module_from_checkpoint``) or one of its nets (``load_net``). A module may
record config keys that it only learns while running (the text-to-image module: its image tokenizer's
architecture) under ``MODEL_EXTRAS_KEY``; they are merged into the stored model config when it is read. ``_target_``
paths that moved since a checkpoint was written are mapped to their new homes as the config is read
(``parti_exp.runtime.moved_targets``).

Writing: Lightning's own save goes through an fsspec transaction, which for local paths writes to a file in the
system temp directory and then *moves* it: across file systems (``/tmp`` and a cluster's scratch space) that move
is a copy, and a job killed during the copy leaves a truncated ``last.ckpt``. Here the bytes go to a temporary file
next to the target, are flushed to disk, and replace the target with ``os.replace``, which POSIX makes atomic
within one directory.

Resuming: ``ckpt_path`` as users give it (a file, a run directory, or ``last``) and the checks a resume needs
first. Lightning would resume from any checkpoint whose tensors happen to fit and fail late and cryptically on
one that does not; the stored config names a mismatch before anything is built.

Integrity: every checkpoint written here is sealed with the SHA-256 of its bytes, inside the file (its zip comment,
``parti_exp.runtime.integrity``), and every checkpoint read by path is checked first
(``parti_exp.runtime.checkpoint_integrity``): a damaged one is named, with the newest intact one beside it.

Trust: every checkpoint read (sample, evaluate, resume checks, Lightning's own resume load, ``model.tokenizer_ckpt``)
goes through ``load_checkpoint_file``, which unpickles with ``weights_only=True``: tensors, numbers, strings and
plain containers, nothing that could run code. Our checkpoints need nothing else, and ``write_atomically`` refuses to
write one that would (so a new kind of state fails the first save, not a stranger's load). The stored run config is
checked before anything is built from it (``parti_exp.runtime.trust``). ``trust_checkpoint=true`` lifts both checks.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import pickle
import shutil
from pathlib import Path
from typing import IO, Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol, get_filesystem
from lightning.pytorch import LightningModule
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf
from torch import nn

from parti_exp.errors import BadCheckpointError, MissingInputError, UntrustedCheckpointError, UserError
from parti_exp.runtime.checkpoint_integrity import (
    auto_checkpoint,
    checkpoint_verdict,
    newest_intact,
    restarted_by_launcher,
    verify_checkpoint,
)
from parti_exp.runtime.instantiate import instantiate
from parti_exp.runtime.integrity import seal
from parti_exp.runtime.model_folder import FOLDER_KEY, is_model_folder, load_sampling_weights, read_model_folder
from parti_exp.runtime.moved_targets import with_moved_targets
from parti_exp.runtime.trust import TRUST_REMEDY, check_stored_targets, checkpoints_trusted

log = logging.getLogger(__name__)

CONFIG_KEY = "parti_exp_config"
MODEL_EXTRAS_KEY = "parti_exp_model_extras"

def _unsafe_globals(source: str | Path | IO[bytes]) -> list[str]:
    """The pickled globals in a ``torch.save`` file that weights-only loading refuses (read, never called)."""
    if not isinstance(source, (str, Path)):
        source.seek(0)
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(source)
    except (ValueError, RuntimeError, pickle.UnpicklingError):  # not a zip checkpoint: nothing to list
        return []


def load_checkpoint_file(source: str | Path | IO[bytes], key: str = "ckpt_path", mmap: bool = False) -> Any:
    """Unpickle a ``torch.save`` file on the CPU: weights only (tensors and plain data) unless the user trusts
    checkpoints. ``key`` names the setting the file came from in error messages; ``mmap`` (paths only) maps tensors
    instead of reading them."""
    name = source if isinstance(source, (str, Path)) else getattr(source, "name", "the file")
    if isinstance(source, (str, Path)):
        verify_checkpoint(source, key)  # a damaged file is named, with an intact one beside it, before unpickling
    trusted = checkpoints_trusted()
    try:
        return torch.load(source, map_location="cpu", weights_only=not trusted, mmap=mmap)
    except pickle.UnpicklingError as error:
        found = [] if trusted else _unsafe_globals(source)
        if found:
            raise UntrustedCheckpointError(
                f"{key}={name} was not loaded: besides tensors and plain data it holds pickled Python objects "
                f"({', '.join(sorted(set(found)))}), and unpickling those can run any code. Checkpoints written by "
                f"parti_exp never hold them: this file is older, foreign or tampered with. {TRUST_REMEDY}"
            ) from error
        raise BadCheckpointError(f"{key}={name} is not a readable PyTorch checkpoint: {error}") from error
    except Exception as error:  # torch raises several types for a file that is not a checkpoint
        raise BadCheckpointError(f"{key}={name} is not a readable PyTorch checkpoint: {error}") from error


def checkpoint_file(path: str | Path, key: str = "ckpt_path") -> Path:
    """The checkpoint file a user's ``path`` names: the file itself, or a run directory's ``checkpoints/last.ckpt``
    (a ``checkpoints/`` directory's ``last.ckpt``). MissingInputError otherwise; ``key`` names the setting ``path``
    came from. Every command and every ``*_ckpt`` key reads its path through here, so all accept the same forms."""
    path = Path(path).expanduser()
    if is_model_folder(path):
        return path  # read as a whole by read_checkpoint (parti_exp.runtime.model_folder)
    if path.is_dir():
        for candidate in (path / "checkpoints" / "last.ckpt", path / "last.ckpt"):
            if candidate.is_file():
                return candidate
        raise MissingInputError(
            f"{key}={path} is a directory without checkpoints/last.ckpt: give a run directory "
            "(logs/train/runs/<run>, the hydra.run.dir of a training run) or a .ckpt file"
        )
    if not path.is_file():
        raise MissingInputError(
            f"{key}={path} does not exist; give a .ckpt file or a run directory (its checkpoints/last.ckpt is used)"
        )
    return path


def require_checkpoint_file(path: str | Path, key: str = "ckpt_path") -> None:
    """MissingInputError unless ``path`` names a checkpoint file (``checkpoint_file``)."""
    checkpoint_file(path, key)


def read_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict:
    """Read a parti_exp checkpoint (a file or a run directory, ``checkpoint_file``) on the CPU, with a clear error
    for anything else; ``key`` names the setting the path came from in error messages. Its stored config is checked
    before anyone builds from it."""
    path = checkpoint_file(path, key)
    if path.is_dir():
        # A model folder (checkpoint_file returns no other directory): nothing in it is unpickled.
        folder = read_model_folder(path, key)
        checkpoint = {CONFIG_KEY: folder.pop("config"), **folder}
        check_stored_targets(with_moved_targets(checkpoint[CONFIG_KEY]), f"{key}={path}")
        return checkpoint
    # Memory-mapped: checks that read only the stored config (a resume's) do not read every tensor.
    checkpoint = load_checkpoint_file(path, key, mmap=True)
    if not isinstance(checkpoint, dict) or CONFIG_KEY not in checkpoint or "state_dict" not in checkpoint:
        raise BadCheckpointError(
            f"{key}={path} is not a parti_exp training checkpoint (no stored run config); "
            "use a .ckpt written by `python -m parti_exp.train` (<run dir>/checkpoints/last.ckpt)"
        )
    check_stored_targets(with_moved_targets(checkpoint[CONFIG_KEY]), f"{key}={path}")
    # The extras are merged into the model config when it is read: they are checked under that name.
    check_stored_targets({"model": checkpoint.get(MODEL_EXTRAS_KEY) or {}}, f"{key}={path}")
    return checkpoint


def stored_config(checkpoint: dict) -> DictConfig:
    """The run config a checkpoint was trained with, with the model's recorded extras merged in."""
    config = with_moved_targets(checkpoint[CONFIG_KEY])
    extras = checkpoint.get(MODEL_EXTRAS_KEY) or {}
    if extras:
        config = {**config, "model": {**config["model"], **extras}}
    return OmegaConf.create(config)


def module_from_checkpoint(checkpoint: dict) -> tuple[LightningModule, DictConfig]:
    """Rebuild the trained module from the config stored in the checkpoint and load its weights."""
    cfg = stored_config(checkpoint)
    # _convert_="all", as in training: optimizer kwargs such as betas arrive as plain lists.
    module = instantiate(cfg.model, _convert_="all")
    if FOLDER_KEY in checkpoint:
        load_sampling_weights(module, checkpoint["state_dict"], checkpoint[FOLDER_KEY])
    else:
        module.load_state_dict(checkpoint["state_dict"])
    module.on_load_checkpoint(checkpoint)
    return module, cfg


def load_net(path: str | Path, prefix: str, key: str = "ckpt_path") -> tuple[nn.Module, dict]:
    """The net stored as ``model.<prefix>`` in a training checkpoint (e.g. ``generator``), built from its stored
    config with its trained weights, and that config. ``key`` names the setting ``path`` came from."""
    checkpoint = read_checkpoint(path, key)
    net_cfg = OmegaConf.select(stored_config(checkpoint), f"model.{prefix}")
    if not isinstance(net_cfg, DictConfig) or "_target_" not in net_cfg:
        raise BadCheckpointError(f"{key}={path} holds no net model.{prefix}")
    net = instantiate(net_cfg)
    start = f"{prefix}."
    net.load_state_dict({k[len(start) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(start)})
    return net, OmegaConf.to_container(net_cfg)


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path) -> str | None:
    """The checkpoint file to resume from, or None for a fresh start.

    ``auto``: the newest intact checkpoint of ``<output_dir>/checkpoints`` (damaged ones skipped with a warning),
    else a fresh start. In a worker group that torchrun restarted it takes precedence over any ``ckpt_path`` when
    the run directory has an intact checkpoint, so that ``--max-restarts`` continues the run instead of starting it
    over (or over from the file it started from). ``last``: ``<output_dir>/checkpoints/last.ckpt``
    when it exists (or, when it is damaged, the newest intact checkpoint beside it, with a warning), else a fresh
    start (so one command line, e.g. a requeued SLURM job with a fixed ``hydra.run.dir``, both starts and resumes a
    run). A directory: its ``checkpoints/last.ckpt``. Anything else must be a checkpoint file.
    """
    if restarted_by_launcher():
        # The run's own newest checkpoint, also when the first attempt started from a given file (a fine-tune):
        # resuming that file again would throw away what the run has done since.
        found = auto_checkpoint(output_dir)
        log.warning("torchrun restarted this worker group (restart %d): resuming with ckpt_path=auto%s",
                    restarted_by_launcher(), f" ({found})" if found is not None else
                    (f", which found nothing: starting from ckpt_path={ckpt_path}" if ckpt_path is not None else ""))
        if found is not None:
            return str(found)
    if ckpt_path is None:
        return None
    if str(ckpt_path) == "auto":
        found = auto_checkpoint(output_dir)
        if found is not None:
            log.info("ckpt_path=auto: resuming from %s", found)
        return None if found is None else str(found)
    if str(ckpt_path) == "last":
        last = Path(output_dir) / "checkpoints" / "last.ckpt"
        if last.is_file():
            return str(last if not checkpoint_verdict(last).damaged else newest_intact(last.parent) or last)
        log.info("ckpt_path=last: no %s yet, starting a new run", last)
        return None
    if is_model_folder(Path(ckpt_path).expanduser()):
        raise BadCheckpointError(
            f"ckpt_path={ckpt_path} is a model folder (python -m parti_exp.export): it holds the weights sampling "
            "needs, not the optimizer state and counters a run resumes from; resume from the run's .ckpt instead"
        )
    try:
        return str(checkpoint_file(ckpt_path))
    except MissingInputError as error:
        if Path(ckpt_path).expanduser().is_dir():
            raise
        raise MissingInputError(f"{error}, or ckpt_path=last with hydra.run.dir set to the run to continue") from None


# Config keys that must be equal for a checkpoint's tensors and training state to mean the same thing.
MUST_MATCH = (
    "model._target_",
    "model.generator._target_",
    "model.discriminator._target_",
    "model.net._target_",
    "model.augment._target_",  # ADA's p and its running statistics are module state; other pipelines hold none
    "model.task._target_",  # an image-to-image model's task sets its nets' input shapes ...
    "model.task.scale",  # ... and a super-resolution model's upsampling
    "data.img_size",
    "data.channels",
)


def check_resumable(ckpt_path: str, cfg: DictConfig) -> None:
    """Raise BadCheckpointError when the checkpoint was trained with another model or image shape than ``cfg``."""
    stored = stored_config(read_checkpoint(ckpt_path))
    differences = []
    for key in MUST_MATCH:
        theirs, ours = OmegaConf.select(stored, key), OmegaConf.select(cfg, key, throw_on_missing=False)
        if theirs != ours:
            differences.append(f"{key}: checkpoint {theirs!r}, this run {ours!r}")
    if differences:
        raise BadCheckpointError(
            f"ckpt_path={ckpt_path} was trained with a different setup and cannot be resumed here ("
            + "; ".join(differences)
            + "). Pass the same model=/data= options as that run (its .hydra/config.yaml lists them)"
        )


TEMP_MARKER = ".partial-"


class CheckpointWriteError(UserError, OSError):
    """A checkpoint could not be written; the file it would have replaced is untouched."""


def write_atomically(checkpoint: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` to ``path`` via a same-directory temporary file and ``os.replace``."""
    path = Path(path)
    temp = path.with_name(f"{path.name}{TEMP_MARKER}{os.getpid()}")
    # Serialised in memory first: torch.save's zip writer reports a failing write as a RuntimeError about
    # stream positions; a plain write of bytes reports ENOSPC / EROFS as what they are.
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    needs_pickle = _unsafe_globals(buffer)
    if needs_pickle:
        # A bug, not the user's: some state was stored as a Python object. Our own loader would refuse the file.
        raise TypeError(
            f"refusing to write {path}: it would hold pickled Python objects ({', '.join(sorted(set(needs_pickle)))}) "
            "that weights-only loading refuses; store that state as tensors, numbers, strings and containers"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Leftovers of writers that were killed mid-save (their pid is in the name) are garbage.
        for stale in path.parent.glob(f"{path.name}{TEMP_MARKER}*"):
            stale.unlink(missing_ok=True)
        with open(temp, "wb") as file:
            file.write(seal(buffer.getbuffer()))  # the SHA-256 of the content travels inside the file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except OSError as error:
        try:
            temp.unlink(missing_ok=True)
        except OSError:  # a read-only file system refuses even that: there is nothing to remove then
            pass
        previous = f"the previous {path.name} is intact" if path.exists() else f"no earlier {path.name} exists"
        # Free space explains a full disk (or quota), and only that.
        full = error.errno in (errno.ENOSPC, errno.EDQUOT)
        space = _space_report(path.parent, buffer.getbuffer().nbytes) if full else ""
        raise CheckpointWriteError(
            error.errno,
            f"could not write the checkpoint {path} ({error.strerror or error}); {previous}. "
            f"{space}Free disk space or "
            "make the directory writable (or set hydra.run.dir to a writable place), then resume from the "
            "last checkpoint with ckpt_path=...",
        ) from error


def _space_report(directory: Path, needed: int) -> str:
    """Which file system ``directory`` is on and its free space against ``needed`` bytes (empty if unknown)."""
    mount = directory.resolve()
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return ""
    return (f"The file system mounted at {mount} has {free / 2**20:.1f} MiB free; this checkpoint needs "
            f"{needed / 2**20:.1f} MiB. ")


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose local saves are atomic (remote URLs keep Lightning's own path), and whose loads (a
    resume) go through ``load_checkpoint_file``: weights only unless the user trusts checkpoints."""

    def load_checkpoint(self, path, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        # The user's trust_checkpoint decides, whatever a caller passes as weights_only; tensors land on the CPU,
        # as with Lightning's default map_location, and Lightning moves them where they belong.
        if _is_local_file_protocol(path):
            return load_checkpoint_file(path)
        with get_filesystem(path).open(path, "rb") as file:
            return load_checkpoint_file(file)

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        write_atomically(checkpoint, path)
