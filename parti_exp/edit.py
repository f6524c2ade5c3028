"""python -m parti_exp.edit ckpt_path=PATH image=PATH_OR_DIR mask=bottom prompt="a handwritten eight" n=8:
text-guided inpainting and outpainting with a text-to-image checkpoint (model=parti or model=muse).

Each image is encoded by the checkpoint's image tokenizer; the codes of the masked token cells are sampled again
for the prompt, the others kept (``parti_exp.inference.editing``). Writes ``<out_dir>/edits/<image name>/000.png ...``
and ``sheet.png`` beside them. ``mask`` and ``pad``: ``parti_exp.inference.edit_mask``."""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from parti_exp import CONF_DIR
from parti_exp.builders import resolve_device
from parti_exp.errors import ConfigError
from parti_exp.inference.edit_inputs import input_images, output_folders, read_image, to_model_input
from parti_exp.inference.edit_mask import cells_touched, pad_image, parse_pad, requested_mask
from parti_exp.inference.edit_sheet import save_edit_sheet
from parti_exp.inference.editing import RERANK_RULES, edit_image
from parti_exp.inference.prompts import reranking_scorer, sampling_of
from parti_exp.protocols import FillsMaskedTokens
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.runtime.console import quiet_library_noise
from parti_exp.runtime.images import save_each
from parti_exp.runtime.job_log import job_log
from parti_exp.runtime.key_suggestions import run_with_key_suggestions
from parti_exp.runtime.progress import tracked
from parti_exp.runtime.run_dir import removed_if_failed_empty
from parti_exp.runtime.trust import trusting_checkpoints
from parti_exp.runtime.validation import require


def edit(cfg: DictConfig, out_dir: Path) -> list[Path]:
    """Write ``cfg.n`` edits of each image of ``cfg.image`` and a sheet per image under ``out_dir/edits``; return
    the edits' paths."""
    require(cfg.n >= 1 and cfg.n_candidates >= 1, "n and n_candidates",
            f"must be >= 1, got n={cfg.n}, n_candidates={cfg.n_candidates}")
    require(cfg.rerank in RERANK_RULES, f"rerank={cfg.rerank}", f"is not one of {', '.join(RERANK_RULES)}")
    if not str(cfg.prompt).strip():
        raise ConfigError('prompt is empty: say what the regenerated area should show, prompt="a handwritten eight"')
    pad = parse_pad(cfg.pad)
    paths = input_images(cfg.image)
    with trusting_checkpoints(cfg.trust_checkpoint):
        module, train_cfg = module_from_checkpoint(read_checkpoint(cfg.ckpt_path))
    if not isinstance(module, FillsMaskedTokens):
        raise ConfigError(f"ckpt_path={cfg.ckpt_path} is a {type(module).__name__} checkpoint "
                          f"({train_cfg.model._target_}): editing needs a text-to-image checkpoint, the "
                          "checkpoints/last.ckpt of a `python -m parti_exp.train model=parti` (or model=muse) run")
    module = module.to(resolve_device(cfg.device))
    size, channels = int(train_cfg.data.img_size), int(train_cfg.data.channels)
    sampling = sampling_of(module, cfg)
    reranks_by_scorer = cfg.n_candidates > 1 and cfg.rerank != "agreement"
    if cfg.get("scorer_ckpt") and not reranks_by_scorer:
        raise ConfigError(f"scorer_ckpt is for reranking by the scorer: set n_candidates > 1 and rerank=both or "
                          f"scorer (got n_candidates={cfg.n_candidates}, rerank={cfg.rerank})")
    scorer = reranking_scorer(module, train_cfg, cfg) if reranks_by_scorer else None
    generator = torch.Generator(module.device).manual_seed(cfg.seed)

    written = []
    for path, folder in tracked(zip(paths, output_folders(paths)), f"editing {len(paths)} images", len(paths) * cfg.n,
                                per_item=cfg.n, unit="edits"):
        canvas, padded = pad_image(read_image(path, channels), pad, cfg.pad_value)
        requested = requested_mask(cfg.mask, *canvas.shape[-2:])
        # Both masks carried to the model's pixels by overlap; the requested one may be a mask image of its own size.
        mask = cells_touched(requested, (size, size)) | cells_touched(padded, (size, size))
        image = to_model_input(canvas, size, f"image {path}")
        edits = edit_image(module, image, mask, cfg.prompt, cfg.n, cfg.n_candidates, scorer, cfg.rerank, sampling,
                           generator)
        written += save_each(edits.images, out_dir / "edits" / folder, digits=3)
        save_edit_sheet(cfg.prompt, image, mask, edits.images, out_dir / "edits" / folder / "sheet.png")
    return written


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="edit")
def main(cfg: DictConfig) -> None:
    quiet_library_noise()
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(HydraConfig.get().runtime.output_dir)
    with removed_if_failed_empty(HydraConfig.get().runtime.output_dir, cfg.task_name), job_log():
        paths = edit(cfg, out_dir)
    print(f"wrote {len(paths)} edits and a sheet per image to {out_dir / 'edits'}")


if __name__ == "__main__":
    run_with_key_suggestions(main, "edit")
