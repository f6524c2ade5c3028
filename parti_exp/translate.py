"""python -m parti_exp.translate ckpt_path=PATH image=PATH_OR_DIR out_dir=DIR [direction=a_to_b|b_to_a] [mask=...]:
map images through an image-to-image checkpoint (model=pix2pix, model=cyclegan).

Each image is read as it is, at the model's input size (a super-resolution model's low-resolution size; an
inpainting model also takes ``mask=``), and its output written to ``<out_dir>/<image name>.png`` at the output size,
with ``sheet.png`` (inputs over their outputs, rows of 8) and ``manifest.json`` beside them
(``parti_exp.inference.translation``)."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from parti_exp import CONF_DIR
from parti_exp.builders import resolve_device
from parti_exp.inference.translation import check_translator, translate_images
from parti_exp.runtime.checkpoints import checkpoint_file, module_from_checkpoint, read_checkpoint
from parti_exp.runtime.console import quiet_library_noise
from parti_exp.runtime.job_log import job_log
from parti_exp.runtime.trust import trusting_checkpoints
from parti_exp.runtime.validation import is_int_at_least, require


def translate(cfg: DictConfig, out_dir: Path) -> list[Path]:
    """Translate every image of ``cfg.image`` into ``out_dir``; return the outputs' paths."""
    require(is_int_at_least(cfg.batch_size, 1), "batch_size", f"must be an integer >= 1, got {cfg.batch_size!r}")
    # A run directory stands for its last.ckpt, and the file is what the manifest records.
    cfg = cfg.copy()
    cfg.ckpt_path = str(checkpoint_file(cfg.ckpt_path))
    with trusting_checkpoints(cfg.trust_checkpoint):
        checkpoint = read_checkpoint(cfg.ckpt_path)
        module, train_cfg = module_from_checkpoint(checkpoint)
    module = check_translator(module, cfg, train_cfg).to(resolve_device(cfg.device))
    return translate_images(module, cfg, checkpoint, out_dir)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="translate")
def main(cfg: DictConfig) -> None:
    quiet_library_noise()
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(HydraConfig.get().runtime.output_dir) / "translations"
    with job_log():
        paths = translate(cfg, out_dir)
    print(f"wrote {len(paths)} translations, sheet.png and manifest.json to {out_dir}")


if __name__ == "__main__":
    main()
