"""python -m parti_exp.sample ckpt_path=PATH n=256 out_dir=DIR: one PNG per image plus grid.png."""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from parti_exp import CONF_DIR
from parti_exp.builders import load_checkpoint, module_from_checkpoint
from parti_exp.images import save_each, save_grid

GRID_SIZE = 256  # images shown in grid.png; the rest only as files


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def sample(cfg: DictConfig, out_dir: Path) -> list[Path]:
    """Write ``cfg.n`` images from ``cfg.ckpt_path`` to ``out_dir``; return the per-image paths."""
    if cfg.n < 1 or cfg.batch_size < 1:
        raise ValueError(f"n and batch_size must be >= 1, got n={cfg.n}, batch_size={cfg.batch_size}")
    module, train_cfg = module_from_checkpoint(load_checkpoint(cfg.ckpt_path))
    module = module.to(resolve_device(cfg.device))
    num_classes = int(train_cfg.data.get("num_classes") or 1)
    classes = torch.tensor(list(cfg.classes)) if cfg.classes is not None else torch.arange(num_classes)
    if ((classes < 0) | (classes >= num_classes)).any():
        raise ValueError(f"classes={cfg.classes} out of range for {num_classes} classes in {train_cfg.data._target_}")

    # All latents in one draw: torch's CPU normal sampler orders its stream differently for different
    # tensor sizes, so per-batch draws would make the images depend on batch_size.
    latents = torch.randn(cfg.n, module.latent_dim, generator=torch.Generator().manual_seed(cfg.seed))
    labels = classes[torch.arange(cfg.n) % len(classes)]
    paths, grid = [], []
    for start in range(0, cfg.n, cfg.batch_size):
        images = module.generate(latents[start : start + cfg.batch_size], labels[start : start + cfg.batch_size])
        paths += save_each(images.cpu(), out_dir, start=start)
        if start < GRID_SIZE:
            grid.append(images[: GRID_SIZE - start].cpu())
    save_grid(torch.cat(grid), out_dir / "grid.png")
    return paths


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="sample")
def main(cfg: DictConfig) -> None:
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(HydraConfig.get().runtime.output_dir) / "samples"
    paths = sample(cfg, out_dir)
    print(f"wrote {len(paths)} images and grid.png to {out_dir}")


if __name__ == "__main__":
    main()
