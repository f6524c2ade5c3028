"""python -m parti_exp.sample ckpt_path=PATH n=256 out_dir=DIR: one PNG per image plus grid.png.

With a text-to-image checkpoint: ``prompts='["a handwritten seven","the digit 2"]' n=16`` writes one folder of
PNGs per prompt and grid.png with each prompt above its row; ``n_candidates=k`` keeps the best of k samples per image,
as scored by the contrastive scorer at ``scorer_ckpt`` (any data) or, without it, by the held-out digit classifier
(labelled data).

With a GAN or VAE checkpoint (``parti_exp.inference.latent``): ``mode=interpolate seeds=[1,2,3] steps=16`` writes
frames/, strip.png and interpolation.gif; GANs also take ``truncation=0.7`` (diversity traded for fidelity) and, when
class-conditional, ``mode=classes n_per_class=16`` (one folder and one grid row per class). ``latents=[a.npz,b.npz]``
(the latents ``python -m parti_exp.project`` wrote) takes the place of seeds in ``mode=sample`` and ``interpolate``.
Every run writes manifest.json beside its images; ``manifest=<that file> out_dir=DIR`` draws the same images again.

What each kind of checkpoint can draw, and which options it takes, is its family's sampler
(``parti_exp.inference.samplers``)."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from parti_exp import CONF_DIR
from parti_exp.builders import resolve_device
from parti_exp.inference.manifest import settings_from_manifest, write_manifest
from parti_exp.inference.samplers import sampler_for
from parti_exp.models.gan.truncation import check_truncation
from parti_exp.runtime.checkpoints import checkpoint_file, module_from_checkpoint, read_checkpoint
from parti_exp.runtime.console import quiet_library_noise
from parti_exp.runtime.job_log import job_log
from parti_exp.runtime.key_suggestions import run_with_key_suggestions
from parti_exp.runtime.missing_inputs import MissingInputs
from parti_exp.runtime.run_dir import removed_if_failed_empty
from parti_exp.runtime.trust import trusting_checkpoints
from parti_exp.runtime.validation import require

MODES = ("sample", "interpolate", "classes")


def sample(cfg: DictConfig, out_dir: Path) -> list[Path]:
    """Write ``cfg.n`` images from ``cfg.ckpt_path`` to ``out_dir`` (or what ``cfg.mode`` asks for) and
    manifest.json; return the per-image paths."""
    if cfg.get("manifest"):
        cfg = settings_from_manifest(cfg)
    require(cfg.n >= 1 and cfg.batch_size >= 1, "n and batch_size",
            f"must be >= 1, got n={cfg.n}, batch_size={cfg.batch_size}")
    require(cfg.mode in MODES, f"mode={cfg.mode}", f"is not one of {', '.join(MODES)}")
    check_truncation(cfg.truncation)
    # Every checkpoint the command reads, before any is loaded: the missing ones in one message. A run directory
    # stands for its last.ckpt, and the file is what the manifest records.
    missing = MissingInputs()
    files = {key: missing.check(checkpoint_file, cfg[key], key) for key in ("ckpt_path", "scorer_ckpt") if cfg.get(key)}
    missing.raise_if_any()
    cfg = cfg.copy()
    for key, file in files.items():
        cfg[key] = str(file)
    with trusting_checkpoints(cfg.trust_checkpoint):
        checkpoint = read_checkpoint(cfg.ckpt_path)
        module, train_cfg = module_from_checkpoint(checkpoint)
    module = module.to(resolve_device(cfg.device))
    sampler = sampler_for(module, cfg.ckpt_path)
    sampler.check(module, cfg)
    paths, details = sampler.sample(module, train_cfg, cfg, out_dir)
    write_manifest(out_dir, cfg, checkpoint, details, paths)
    return paths


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="sample")
def main(cfg: DictConfig) -> None:
    quiet_library_noise()
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(HydraConfig.get().runtime.output_dir) / "samples"
    with removed_if_failed_empty(HydraConfig.get().runtime.output_dir, cfg.task_name), job_log():
        paths = sample(cfg, out_dir)
    print(f"wrote {len(paths)} images and manifest.json to {out_dir}")


if __name__ == "__main__":
    run_with_key_suggestions(main, "sample")
