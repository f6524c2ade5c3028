"""``ckpt_path`` as users give it (a file, a run directory, or ``last``) and the checks a resume needs first.

Lightning would resume from any checkpoint whose tensors happen to fit and fail late and cryptically on one
that does not; a checkpoint carries its run's config here, so a mismatch is named before anything is built.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from parti_exp.builders import load_checkpoint
from parti_exp.callbacks.config_in_checkpoint import CONFIG_KEY

log = logging.getLogger(__name__)


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path) -> str | None:
    """The checkpoint file to resume from, or None for a fresh start.

    ``last``: ``<output_dir>/checkpoints/last.ckpt`` when it exists, else a fresh start (so one command line,
    e.g. a requeued SLURM job with a fixed ``hydra.run.dir``, both starts and resumes a run). A directory: its
    ``checkpoints/last.ckpt``. Anything else must be a checkpoint file.
    """
    if ckpt_path is None:
        return None
    if str(ckpt_path) == "last":
        last = Path(output_dir) / "checkpoints" / "last.ckpt"
        if last.is_file():
            return str(last)
        log.info("ckpt_path=last: no %s yet, starting a new run", last)
        return None
    path = Path(ckpt_path).expanduser()
    if path.is_dir():
        for candidate in (path / "checkpoints" / "last.ckpt", path / "last.ckpt"):
            if candidate.is_file():
                return str(candidate)
        raise FileNotFoundError(
            f"ckpt_path={ckpt_path} is a directory without checkpoints/last.ckpt: give a run directory "
            "(logs/train/runs/<run>) or a .ckpt file"
        )
    if not path.exists():
        raise FileNotFoundError(
            f"ckpt_path={ckpt_path} does not exist; give a .ckpt file, a run directory, or ckpt_path=last "
            "with hydra.run.dir set to the run to continue"
        )
    return str(path)


# Config keys that must be equal for a checkpoint's tensors and training state to mean the same thing.
MUST_MATCH = (
    "model._target_",
    "model.generator._target_",
    "model.discriminator._target_",
    "data.img_size",
    "data.channels",
)


def check_resumable(ckpt_path: str, cfg: DictConfig) -> None:
    """Raise ValueError when the checkpoint was trained with another model or image shape than ``cfg``."""
    stored = OmegaConf.create(load_checkpoint(ckpt_path)[CONFIG_KEY])
    differences = []
    for key in MUST_MATCH:
        theirs, ours = OmegaConf.select(stored, key), OmegaConf.select(cfg, key, throw_on_missing=False)
        if theirs != ours:
            differences.append(f"{key}: checkpoint {theirs!r}, this run {ours!r}")
    if differences:
        raise ValueError(
            f"ckpt_path={ckpt_path} was trained with a different setup and cannot be resumed here ("
            + "; ".join(differences)
            + "). Pass the same model=/data= options as that run (its .hydra/config.yaml lists them)"
        )
