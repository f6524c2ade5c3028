"""What ``python -m parti_exp.translate`` does with an image-to-image checkpoint (``Translates``): read the images a
user gives as they are, make the model's inputs from them (with a mask for inpainting), translate, write one PNG per
image, ``sheet.png`` (rows of inputs over their outputs) and ``manifest.json``. Also what ``python -m
parti_exp.sample`` draws from such a checkpoint: translations of held-out images of its dataset.

Inputs are not resized: a super-resolution model takes its low-resolution input size and nothing else, any model
the size it was trained on, so what comes out is the model's answer to exactly the pixels given.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from lightning.pytorch import LightningModule
from omegaconf import DictConfig, OmegaConf
from torchvision.io import write_png

from parti_exp.callbacks.translation_grid import interleaved
from parti_exp.errors import ConfigError
from parti_exp.inference.edit_inputs import input_images, output_folders, read_image
from parti_exp.inference.edit_mask import cells_touched, requested_mask
from parti_exp.inference.manifest import MANIFEST, file_sha256
from parti_exp.metrics.folder_images import IMAGES_KEY
from parti_exp.protocols import Translates, TranslationTask
from parti_exp.runtime.images import GRID_SIZE, save_each, save_grid, to_uint8
from parti_exp.runtime.instantiate import instantiate

SHEET = "sheet.png"


def check_translator(module: LightningModule, cfg: DictConfig, train_cfg: DictConfig) -> Translates:
    if not isinstance(module, Translates):
        raise ConfigError(f"ckpt_path={cfg.ckpt_path} is a {type(module).__name__} checkpoint "
                          f"({train_cfg.model._target_}), which translates nothing: translate needs an image-to-image "
                          "checkpoint, the checkpoints/last.ckpt of a `python -m parti_exp.train model=pix2pix` or "
                          "`model=cyclegan` run")
    if cfg.direction not in module.directions:
        raise ConfigError(f"direction={cfg.direction}: {type(module).__name__} translates "
                          f"{' and '.join(module.directions)}")
    return module


def input_size_words(task: TranslationTask) -> str:
    """The model's input size in words, with where it comes from when it is not the image size."""
    what = f"{task.input_size} x {task.input_size} px inputs"
    if task.upscale > 1:
        what += f" (task={task.name}: its {task.img_size} px images down-sampled {task.upscale} times)"
    return what


def read_input(path: Path, task: TranslationTask) -> torch.Tensor:
    """The image at ``path`` as ``image_channels x input_size x input_size`` in [-1, 1]; a file of another size
    is refused, not resized."""
    image = read_image(path, task.image_channels)
    size = task.input_size
    if tuple(image.shape[-2:]) != (size, size):
        raise ConfigError(f"image {path} is {image.shape[-1]} x {image.shape[-2]} px; the model takes "
                          f"{input_size_words(task)}: give images at that size, they are not resized")
    return image.float() / 127.5 - 1


def input_mask(spec, task: TranslationTask) -> torch.Tensor | None:
    """``mask=`` at the input's size (True = missing), for a task that takes one; None otherwise."""
    if not task.takes_mask:
        if spec is not None:
            raise ConfigError(f"mask={spec} is for task=inpaint; this model's task is {task.name}: drop mask=")
        return None
    if spec is None:
        raise ConfigError("this model fills holes (task=inpaint): say where they are with mask=[y0,x0,y1,x1] (a box "
                          "in input pixels), mask=top|bottom|left|right, or mask=PATH (an image, white = missing)")
    size = task.input_size
    # A mask image keeps its own size: a model pixel is missing when any masked pixel of the file overlaps it.
    return cells_touched(requested_mask(spec, size, size), (size, size))[None, None]


def output_names(paths: list[Path]) -> list[str]:
    """One file name per input (``edit``'s safe folder names), none of them the sheet's."""
    names = output_folders(paths)
    taken = set(names)
    for i, name in enumerate(names):
        if f"{name}.png" == SHEET:
            while name in taken:
                name += "_out"
            names[i] = name
            taken.add(name)
    return names


def translate_images(module: Translates, cfg: DictConfig, checkpoint: dict, out_dir: Path) -> list[Path]:
    """Translate every image of ``cfg.image``; write the outputs, the sheet and the manifest under ``out_dir``."""
    task = module.task_for(cfg.direction)
    paths = input_images(cfg.image)
    mask = input_mask(cfg.get("mask"), task)
    images = torch.stack([read_input(path, task) for path in paths])  # every file read before any is translated
    outputs, shown = [], []
    for start in range(0, len(images), cfg.batch_size):
        batch = images[start : start + cfg.batch_size]
        inputs = task.model_input(batch, None if mask is None else mask.expand(len(batch), -1, -1, -1))
        outputs.append(module.translate(inputs, cfg.direction).cpu())
        shown.append(task.show(inputs.cpu()))
    outputs, shown = torch.cat(outputs), torch.cat(shown)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / f"{name}.png" for name in output_names(paths)]
    for path, output in zip(written, to_uint8(outputs)):
        write_png(output, str(path))
    sheet, per_line = interleaved([shown[:GRID_SIZE], outputs[:GRID_SIZE]])
    save_grid(sheet, out_dir / SHEET, per_line)
    write_translation_manifest(out_dir, cfg, checkpoint, task, paths, written)
    return written


def write_translation_manifest(
    out_dir: Path, cfg: DictConfig, checkpoint: dict, task: TranslationTask, inputs: list[Path], outputs: list[Path]
) -> Path:
    manifest = {
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
        "checkpoint_sha256": file_sha256(cfg.ckpt_path),
        "g_step": checkpoint.get("gan_steps", {}).get("g_step"),
        "direction": cfg.direction,
        **task.describe(),
        "mask": OmegaConf.to_container(cfg.mask) if OmegaConf.is_config(cfg.get("mask")) else cfg.get("mask"),
        # The outputs under the key evaluate reads a folder's images by (not sheet.png); their inputs, in order.
        IMAGES_KEY: [o.name for o in outputs],
        "inputs": [str(i) for i in inputs],
    }
    path = out_dir / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def translate_held_out(
    module: Translates, train_cfg: DictConfig, cfg: DictConfig, out_dir: Path
) -> tuple[list[Path], dict]:
    """``python -m parti_exp.sample`` with a translator: ``cfg.n`` held-out images of its dataset (the validation
    split in order, repeated if need be), translated ``batch_size`` at a time, each batch's inputs drawn from (``seed``,
    its first index); one PNG per output and grid.png with the epoch grid's rows."""
    datamodule = instantiate(train_cfg.data)
    module.use_held_out(datamodule)
    held_out = datamodule.val_set
    first, _ = held_out.__getitems__(list(range(min(cfg.n, len(held_out)))))
    images = first[torch.arange(cfg.n) % len(first)].float() / 127.5 - 1
    task = module.task_for(module.directions[0])
    batches = [
        module.translation_examples(images[start : start + cfg.batch_size],
                                    task.generator("cpu", "sample", cfg.seed, start))
        for start in range(0, cfg.n, cfg.batch_size)
    ]
    rows = [torch.cat(parts) for parts in zip(*batches)]
    paths = save_each(rows[1], out_dir)
    grid, per_line = interleaved([row[:GRID_SIZE] for row in rows])
    save_grid(grid, out_dir / "grid.png", per_line)
    return paths, {"translated": f"{datamodule.name} val split", **task.describe()}
