"""python -m parti_exp.sample ckpt_path=PATH n=256 out_dir=DIR: one PNG per image plus grid.png.

With a text-to-image checkpoint: ``prompts='["a handwritten seven","the digit 2"]' n=16`` writes one folder of
PNGs per prompt and grid.png with each prompt above its row; ``n_candidates=k`` keeps the best of k samples per image,
as scored by the contrastive scorer at ``scorer_ckpt`` (any data) or, without it, by the held-out digit classifier
(labelled data).

With a GAN or VAE checkpoint (``parti_exp.inference.latent``): ``mode=interpolate seeds=[1,2,3] steps=16`` writes frames/,
strip.png and interpolation.gif; GANs also take ``truncation=0.7`` (diversity traded for fidelity) and, when
class-conditional, ``mode=classes n_per_class=16`` (one folder and one grid row per class). Every run writes
manifest.json beside its images; ``manifest=<that file> out_dir=DIR`` draws the same images again."""

from __future__ import annotations

import hashlib
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from parti_exp import CONF_DIR
from parti_exp.builders import resolve_device
from parti_exp.data.captions.labels import LabelCaptions
from parti_exp.errors import ConfigError
from parti_exp.inference.latent import (
    class_sheets,
    draw_latents,
    interpolate,
    mean_w_note,
    render,
    settings_from_manifest,
    style_mean_w,
    write_manifest,
)
from parti_exp.inference.rerank import ClassifierScorer, ContrastiveScorer, Scorer, sample_reranked
from parti_exp.metrics.digit_classifier import load_or_train_classifier
from parti_exp.models.gan.module import GANModule
from parti_exp.models.gan.truncation import check_truncation
from parti_exp.models.protocols import LatentImageModel
from parti_exp.models.text_to_image.contrastive import ContrastiveModule, load_contrastive
from parti_exp.models.text_to_image.module import TextToImageModule
from parti_exp.models.text_to_image.sampling import SamplingConfig
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint, require_checkpoint_file
from parti_exp.runtime.console import quiet_library_noise
from parti_exp.runtime.images import save_captioned_grid, save_each, save_grid
from parti_exp.runtime.instantiate import instantiate
from parti_exp.runtime.job_log import job_log
from parti_exp.runtime.missing_inputs import MissingInputs
from parti_exp.runtime.trust import trusting_checkpoints

GRID_SIZE = 256  # images shown in grid.png; the rest only as files


MODES = ("sample", "interpolate", "classes")


def sample(cfg: DictConfig, out_dir: Path) -> list[Path]:
    """Write ``cfg.n`` images from ``cfg.ckpt_path`` to ``out_dir`` (or what ``cfg.mode`` asks for) and
    manifest.json; return the per-image paths."""
    if cfg.get("manifest"):
        cfg = settings_from_manifest(cfg)
    if cfg.n < 1 or cfg.batch_size < 1:
        raise ConfigError(f"n and batch_size must be >= 1, got n={cfg.n}, batch_size={cfg.batch_size}")
    if cfg.mode not in MODES:
        raise ConfigError(f"mode={cfg.mode} is not one of {', '.join(MODES)}")
    psi = check_truncation(cfg.truncation)
    # Every checkpoint the command reads, before any is loaded: the missing ones in one message
    missing = MissingInputs()
    for key in ("ckpt_path", "scorer_ckpt"):
        if cfg.get(key):
            missing.check(require_checkpoint_file, cfg[key], key)
    missing.raise_if_any()
    with trusting_checkpoints(cfg.trust_checkpoint):
        checkpoint = read_checkpoint(cfg.ckpt_path)
        module, train_cfg = module_from_checkpoint(checkpoint)
    module = module.to(resolve_device(cfg.device))
    if isinstance(module, TextToImageModule):
        if cfg.get("prompts") is None:
            raise ConfigError(f"{cfg.ckpt_path} is a text-to-image checkpoint: say what to draw with "
                              "prompts='[\"a handwritten seven\"]'")  # fmt: skip
        if cfg.mode != "sample" or cfg.truncation is not None:
            raise ConfigError(f"mode={cfg.mode} truncation={cfg.truncation} are for GAN checkpoints; a text-to-image "
                              "checkpoint samples per prompt: drop them")  # fmt: skip
        paths = sample_prompts(module, train_cfg, cfg, out_dir)
        write_manifest(out_dir, cfg, checkpoint, {})
        return paths
    if cfg.get("prompts") is not None:
        raise ConfigError(f"prompts= needs a text-to-image checkpoint (model=parti); {cfg.ckpt_path} is a "
                          f"{type(module).__name__}")  # fmt: skip
    if isinstance(module, ContrastiveModule):
        raise ConfigError(f"{cfg.ckpt_path} is a contrastive scorer (model=contrastive): it scores images, it does "
                          "not make them; pass it as scorer_ckpt= with a text-to-image ckpt_path and "
                          "n_candidates > 1")  # fmt: skip
    if not isinstance(module, LatentImageModel):
        raise ConfigError(f"{cfg.ckpt_path} is a {type(module).__name__} checkpoint (model=vqgan: an image tokenizer): "
                          "it reconstructs images, it does not sample them; train model=parti with "
                          "model.tokenizer_ckpt pointing at it")  # fmt: skip
    if psi < 1.0 and not isinstance(module, GANModule):
        raise ConfigError(f"truncation={cfg.truncation} is the GANs' truncation trick; {cfg.ckpt_path} is a "
                          f"{type(module).__name__}, which samples its prior as it is: drop truncation=")  # fmt: skip
    if cfg.mode == "interpolate":
        paths, details = interpolate(module, cfg, psi, out_dir)
    elif cfg.mode == "classes":
        paths, details = class_sheets(module, cfg, psi, out_dir)
    else:
        paths, details = sample_gan(module, train_cfg, cfg, psi, out_dir)
    write_manifest(out_dir, cfg, checkpoint, details)
    return paths


def sample_gan(module: LatentImageModel, train_cfg: DictConfig, cfg: DictConfig, psi: float, out_dir: Path
               ) -> tuple[list[Path], dict]:  # fmt: skip
    """``cfg.n`` images, the classes cycled for a conditional model, and grid.png."""
    num_classes = int(train_cfg.data.get("num_classes") or 1)
    classes = torch.tensor(list(cfg.classes)) if cfg.classes is not None else torch.arange(num_classes)
    if ((classes < 0) | (classes >= num_classes)).any():
        raise ConfigError(f"classes={cfg.classes} out of range for {num_classes} classes in {train_cfg.data._target_}")

    # All latents in one draw: torch's CPU normal sampler orders its stream differently for different
    # tensor sizes, so per-batch draws would make the images depend on batch_size.
    latents = draw_latents(module, cfg.n, cfg.seed, psi)
    labels = classes[torch.arange(cfg.n) % len(classes)]
    mean_w = style_mean_w(module, psi)
    paths, grid = [], []
    for start in range(0, cfg.n, cfg.batch_size):
        batch = slice(start, start + cfg.batch_size)
        images = render(module, latents[batch], labels[batch], psi, cfg.batch_size, mean_w)
        paths += save_each(images, out_dir, start=start)
        if start < GRID_SIZE:
            grid.append(images[: GRID_SIZE - start])
    save_grid(torch.cat(grid), out_dir / "grid.png")
    return paths, {"mean_w": mean_w_note(module, psi)}


# Characters of a prompt kept in its folder's name: at most 4 bytes each in UTF-8, so the name stays under the
# 255 bytes file systems allow, hash suffix included.
PROMPT_FOLDER_CHARS = 48


def prompt_folder(prompt: str) -> str:
    """One folder name, inside the output folder whatever the prompt holds: letters and digits are kept, anything
    else (``/``, ``..``, NUL) becomes ``_``; a long prompt is cut and told apart from others by a hash of it."""
    name = "".join(c if c.isalnum() else "_" for c in prompt.strip().lower()) or "prompt"
    if len(name) <= PROMPT_FOLDER_CHARS:
        return name
    digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{name[:PROMPT_FOLDER_CHARS]}-{digest[:12]}"


def sample_prompts(module: TextToImageModule, train_cfg: DictConfig, cfg: DictConfig, out_dir: Path) -> list[Path]:
    """``cfg.n`` images per prompt, each the best of ``cfg.n_candidates`` when reranking."""
    prompts = list(cfg.prompts)
    sampling = SamplingConfig(**{**vars(module.sampling), **OmegaConf.to_container(cfg.sampling)})
    scorer = reranking_scorer(module, train_cfg, cfg) if cfg.n_candidates > 1 else None
    if scorer is None and cfg.get("scorer_ckpt"):
        raise ConfigError(f"scorer_ckpt is for reranking: set n_candidates > 1 (got {cfg.n_candidates})")
    generator = torch.Generator(module.device).manual_seed(cfg.seed)
    paths, rows = [], []
    for prompt in prompts:
        images, _ = sample_reranked(module, prompt, cfg.n, cfg.n_candidates, scorer, sampling, generator)
        paths += save_each(images.cpu(), out_dir / prompt_folder(prompt))
        rows.append((prompt, images[:GRID_SIZE].cpu()))
    save_captioned_grid(rows, out_dir / "grid.png")
    return paths


def reranking_scorer(module: TextToImageModule, train_cfg: DictConfig, cfg: DictConfig) -> Scorer:
    """The contrastive scorer of ``cfg.scorer_ckpt``, else the held-out digit classifier of labelled data."""
    if cfg.get("scorer_ckpt"):
        with trusting_checkpoints(cfg.trust_checkpoint):
            scorer = load_contrastive(cfg.scorer_ckpt).to(module.device)
        scorer.check_images_fit(train_cfg.data.img_size, train_cfg.data.channels, f"scorer_ckpt={cfg.scorer_ckpt}")
        return ContrastiveScorer(scorer)
    datamodule = instantiate(train_cfg.data)
    source = datamodule.caption_source()
    if not isinstance(source, LabelCaptions):
        raise ConfigError(
            f"n_candidates={cfg.n_candidates} without scorer_ckpt reranks with the digit classifier, which needs "
            f"labelled data; {cfg.ckpt_path} was trained on {datamodule.name}'s free-text captions: give "
            "scorer_ckpt=<the checkpoints/last.ckpt of a `python -m parti_exp.train model=contrastive` run>"
        )
    classifier = load_or_train_classifier(datamodule.train_set, datamodule.val_set, datamodule.num_classes,
                                          cfg.classifier_cache_dir, module.device).net  # fmt: skip
    return ClassifierScorer(classifier, source.captioner)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="sample")
def main(cfg: DictConfig) -> None:
    quiet_library_noise()
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(HydraConfig.get().runtime.output_dir) / "samples"
    with job_log():
        paths = sample(cfg, out_dir)
    print(f"wrote {len(paths)} images and manifest.json to {out_dir}")


if __name__ == "__main__":
    main()
