"""``manifest.json``, written beside every sample: the checkpoint (path, SHA-256, its generator step), the seeds and
every setting that decides the images, so that ``python -m parti_exp.sample manifest=<it> out_dir=...`` draws the
same PNG files again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from parti_exp.errors import ConfigError
from parti_exp.metrics.folder_images import IMAGES_KEY, MANIFEST
from parti_exp.runtime.model_folder import WEIGHTS

# Sample settings that say where or how to run, not what to draw: left out of the manifest.
NOT_SETTINGS = ("out_dir", "paths", "hydra", "device", "manifest", "task_name", "classifier_cache_dir")


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file; of a model folder, that of its weights (what decides its images with its config)."""
    if Path(path).is_dir():
        path = Path(path) / WEIGHTS
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(out_dir: Path, cfg: DictConfig, checkpoint: dict, details: dict,
                   images: list[Path] = ()) -> Path:
    """``manifest.json``: the checkpoint (path, SHA-256, G step), the seeds and every setting that decides the
    images; ``python -m parti_exp.sample manifest=<it> out_dir=…`` draws them again. ``images``: the samples
    written (paths under ``out_dir``), listed so that a reader of the folder (``evaluate fake_dir=``) takes those and
    not the sheets beside them (grid.png, strip.png)."""
    kept = [key for key in cfg if key not in NOT_SETTINGS]  # before resolving: paths.* need a Hydra run
    settings = OmegaConf.to_container(OmegaConf.masked_copy(cfg, kept), resolve=True)
    manifest = {
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
        "checkpoint_sha256": file_sha256(cfg.ckpt_path),
        "g_step": checkpoint.get("gan_steps", {}).get("g_step"),
        "mode": cfg.get("mode", cfg.get("task_name")),  # the command's name where it has no modes (project)
        "seeds": list(cfg.seeds) if cfg.get("mode") == "interpolate" and cfg.get("seeds") else [cfg.seed],
        "settings": settings,
        **{k: v for k, v in details.items() if v is not None},
        IMAGES_KEY: [Path(image).relative_to(out_dir).as_posix() for image in images],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def settings_from_manifest(cfg: DictConfig) -> DictConfig:
    """``cfg`` with the settings of ``cfg.manifest`` in place of its own (where and on what device are kept); the
    checkpoint is the manifest's absolute path unless ``ckpt_path`` is given (a moved copy), and must still be the
    file the manifest was written from."""
    path = Path(cfg.manifest)
    if not path.is_file():
        raise ConfigError(f"manifest={path} does not exist: give the manifest.json written beside a sample's images")
    manifest = json.loads(path.read_text())
    given = None if OmegaConf.is_missing(cfg, "ckpt_path") else cfg.ckpt_path
    replay = OmegaConf.merge(cfg, manifest["settings"], {"ckpt_path": given or manifest["checkpoint"]})
    if Path(replay.ckpt_path).is_file() and file_sha256(replay.ckpt_path) != manifest["checkpoint_sha256"]:
        raise ConfigError(f"manifest={path} was written from another file than ckpt_path={replay.ckpt_path} (its "
                          "SHA-256 differs): the images would not be the same; restore that checkpoint")
    return replay
