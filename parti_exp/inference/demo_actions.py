"""What the buttons of the local demo page (``python -m parti_exp.demo``) do, without the page: each turns the page's
inputs into the options ``python -m parti_exp.sample`` (``edit``, ``translate``) would take and runs the same
inference code (the family's sampler, ``edit_image``, ``translate_images``), into a fresh folder per click that
holds the images and their ``manifest.json``, with a zip of it beside it for download. So the command line draws a
result of the page again from its manifest, and the page has no sampling code of its own."""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from lightning.pytorch import LightningModule
from omegaconf import DictConfig, open_dict

from parti_exp.errors import ConfigError
from parti_exp.inference.edit_inputs import read_image, to_model_input
from parti_exp.inference.edit_mask import cells_touched, requested_mask
from parti_exp.inference.edit_sheet import save_edit_sheet
from parti_exp.inference.editing import edit_image
from parti_exp.inference.manifest import write_manifest
from parti_exp.inference.prompts import sampling_of
from parti_exp.inference.samplers import sampler_for
from parti_exp.inference.translation import translate_images
from parti_exp.protocols import FillsMaskedTokens
from parti_exp.runtime.images import save_each


@dataclass
class DemoModel:
    """The model the page serves, loaded once: the module on its device, its training config, its checkpoint (what
    the manifests record), ``base``: the sample options every click starts from, ``out_dir``: where results go."""

    module: LightningModule
    train_cfg: DictConfig
    checkpoint: dict
    base: DictConfig
    out_dir: Path
    scorer_ckpt: str | None = None
    _clicks: itertools.count = field(default_factory=itertools.count)

    @property
    def family(self) -> str:
        return self.module.family

    def fresh_folder(self, kind: str) -> Path:
        """A new folder for one click's results (numbered: the page keeps every result downloadable)."""
        while True:
            folder = self.out_dir / f"{next(self._clicks):04d}_{kind}"
            if not folder.exists():
                folder.mkdir(parents=True)
                return folder


@dataclass
class DemoResult:
    """The images of one click, the zip of its folder, the folder, and a caption per image (or None)."""

    images: list[Path]
    archive: Path
    folder: Path
    captions: list[str] | None = None


def _finish(folder: Path, images: list[Path], captions: list[str] | None = None) -> DemoResult:
    # Beside the folder, not in it: the archive would otherwise take in its own partial file.
    archive = shutil.make_archive(str(folder), "zip", root_dir=folder)
    return DemoResult(images, Path(archive), folder, captions)


def _options(model: DemoModel, **values) -> DictConfig:
    cfg = model.base.copy()
    with open_dict(cfg):  # edit's and translate's options (prompt, image, direction) are not sample options
        for key, value in values.items():
            cfg[key] = value
    return cfg


def _run_sampler(model: DemoModel, cfg: DictConfig, kind: str, captions: list[str] | None = None) -> DemoResult:
    folder = model.fresh_folder(kind)
    sampler = sampler_for(model.module, cfg.ckpt_path)
    sampler.check(model.module, cfg)
    images, details = sampler.sample(model.module, model.train_cfg, cfg, folder)
    write_manifest(folder, cfg, model.checkpoint, details, images)
    return _finish(folder, images, captions)


def prompt_lines(text: str) -> list[str]:
    """One prompt per non-empty line of the page's text box."""
    prompts = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    if not prompts:
        raise ConfigError("no prompt: write one per line, e.g. a handwritten seven")
    return prompts


def draw_prompts(model: DemoModel, prompts: str, n: int, guidance: float, temperature: float, n_candidates: int,
                 seed: int) -> DemoResult:
    """Text-to-image: ``n`` images per prompt line, each the best of ``n_candidates`` by the scorer when one is
    served (else the held-out digit classifier, as the sample command)."""
    scorer = model.scorer_ckpt if int(n_candidates) > 1 else None
    lines = prompt_lines(prompts)
    cfg = _options(model, prompts=lines, n=int(n), seed=int(seed), n_candidates=int(n_candidates), scorer_ckpt=scorer)
    cfg.sampling.guidance_scale = float(guidance)
    cfg.sampling.temperature = float(temperature)
    # The sampler writes the images prompt by prompt, n of each.
    return _run_sampler(model, cfg, "prompts", [line for line in lines for _ in range(int(n))])


def draw_latents(model: DemoModel, seed: int, n: int, truncation: float | None, label: int | None) -> DemoResult:
    """GANs and the VAE: ``n`` images from ``seed`` (of class ``label`` for a conditional model, else the classes in
    turn), truncated to ``truncation`` where the family truncates (None or 1: none)."""
    psi = None if truncation is None or float(truncation) >= 1.0 else float(truncation)
    classes = None if label is None or label == "" else [int(label)]
    return _run_sampler(model, _options(model, n=int(n), seed=int(seed), truncation=psi, classes=classes), "samples")


def interpolate_seeds(model: DemoModel, first: int, second: int, steps: int, truncation: float | None) -> DemoResult:
    """GANs and the VAE: ``steps`` frames from one seed's sample to the other's (and interpolation.gif)."""
    psi = None if truncation is None or float(truncation) >= 1.0 else float(truncation)
    cfg = _options(model, mode="interpolate", seeds=[int(first), int(second)], steps=int(steps), truncation=psi)
    return _run_sampler(model, cfg, "interpolation")


def translate_upload(model: DemoModel, image: str | Path) -> DemoResult:
    """Translators: the uploaded image's translation, sheet.png and the manifest (``python -m parti_exp.translate``)."""
    if not image:
        raise ConfigError("upload an image to translate first")
    folder = model.fresh_folder("translation")
    source = folder / "input" / Path(image).name
    source.parent.mkdir()
    shutil.copy(image, source)
    cfg = _options(model, image=str(source), direction=model.module.directions[0], mask=None, batch_size=1)
    images = translate_images(model.module, cfg, model.checkpoint, folder)
    return _finish(folder, images)


def edit_upload(model: DemoModel, image: str | Path, mask: str | list | Path, prompt: str, n: int,
                seed: int) -> DemoResult:
    """Editing (text-to-image models): ``n`` versions of the uploaded image with the masked area drawn again for
    ``prompt``; ``mask`` as ``python -m parti_exp.edit`` takes it: a half (``bottom``), a box ``[y0, x0, y1, x1]`` in
    the image's pixels, or the path of a mask image (white: redraw)."""
    if not isinstance(model.module, FillsMaskedTokens):
        raise ConfigError(f"editing needs a text-to-image model; this is a {type(model.module).__name__}")
    if not image:
        raise ConfigError("upload an image to edit first")
    if not str(prompt or "").strip():
        raise ConfigError('prompt is empty: say what the masked area should show, e.g. "a handwritten eight"')
    folder = model.fresh_folder("edit")
    module, size = model.module, int(model.train_cfg.data.img_size)
    canvas = read_image(Path(image), int(model.train_cfg.data.channels))
    keep_out = cells_touched(requested_mask(str(mask) if isinstance(mask, Path) else mask, *canvas.shape[-2:]),
                             (size, size))
    cfg = _options(model, prompt=str(prompt), n=int(n), seed=int(seed), n_candidates=1, mode="sample")
    generator = torch.Generator(module.device).manual_seed(int(seed))
    edits = edit_image(module, to_model_input(canvas, size, f"image {image}"), keep_out, cfg.prompt, cfg.n, 1, None,
                       "agreement", sampling_of(module, cfg), generator)
    images = save_each(edits.images, folder, digits=3)
    save_edit_sheet(cfg.prompt, to_model_input(canvas, size, "image"), keep_out, edits.images, folder / "sheet.png")
    write_manifest(folder, cfg, model.checkpoint, {"edit": {"mask": str(mask), "image": str(image)}}, images)
    return _finish(folder, images)

