"""python -m parti_exp.project ckpt_path=PATH image=PATH_OR_DIR out_dir=DIR
[distance=pixels|ssim|discriminator|classifier] [space=w|w+|z] [steps=300] [label=3]: find the latent of each image
under a GAN checkpoint.

Writes, per image, ``<name>.png`` (the projection: what the latent regenerates), ``<name>.npz`` (the latent, its space,
noise maps and class, the checkpoint's SHA-256), ``<name>.gif`` (the optimisation), then ``sheet.png`` (each target
beside its projection) and ``manifest.json``. ``python -m parti_exp.sample ckpt_path=PATH latents=[a.npz,b.npz]
mode=interpolate`` (or ``truncation=0.7``) edits them (``parti_exp.inference.projection``)."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from parti_exp import CONF_DIR
from parti_exp.builders import resolve_device
from parti_exp.inference.projection import project_images
from parti_exp.runtime.checkpoints import checkpoint_file, module_from_checkpoint, read_checkpoint
from parti_exp.runtime.console import quiet_library_noise
from parti_exp.runtime.job_log import job_log
from parti_exp.runtime.key_suggestions import run_with_key_suggestions
from parti_exp.runtime.missing_inputs import MissingInputs
from parti_exp.runtime.trust import trusting_checkpoints


def project(cfg: DictConfig, out_dir: Path) -> list[Path]:
    """Project every image of ``cfg.image`` into ``cfg.ckpt_path``'s GAN; return the projections' paths."""
    missing = MissingInputs()
    file = missing.check(checkpoint_file, cfg.ckpt_path, "ckpt_path")
    missing.raise_if_any()
    # A run directory stands for its last.ckpt, and the file is what the manifest and the latents record.
    cfg = cfg.copy()
    cfg.ckpt_path = str(file)
    with trusting_checkpoints(cfg.trust_checkpoint):
        checkpoint = read_checkpoint(cfg.ckpt_path)
        module, train_cfg = module_from_checkpoint(checkpoint)
    module = module.to(resolve_device(cfg.device))
    return project_images(module, cfg, train_cfg, checkpoint, out_dir)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="project")
def main(cfg: DictConfig) -> None:
    quiet_library_noise()
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(HydraConfig.get().runtime.output_dir) / "projections"
    with job_log():
        paths = project(cfg, out_dir)
    print(f"wrote {len(paths)} projections (.png, .npz, .gif), sheet.png and manifest.json to {out_dir}")


if __name__ == "__main__":
    run_with_key_suggestions(main, "project")
