"""What ``python -m parti_exp.sample`` and ``python -m parti_exp.edit`` do with a text-to-image checkpoint's prompts:
one folder of images per prompt (a name that stays inside the output folder whatever the prompt holds), each image
the best of ``n_candidates`` by a scorer: the contrastive scorer of ``scorer_ckpt``, or the held-out digit
classifier of labelled data."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from parti_exp.data.captions.labels import LabelCaptions
from parti_exp.errors import ConfigError
from parti_exp.inference.rerank import ClassifierScorer, ContrastiveScorer, Scorer, sample_reranked
from parti_exp.metrics.digit_classifier import load_or_train_classifier
from parti_exp.models.text_to_image.contrastive import load_contrastive
from parti_exp.protocols import SamplesForPrompts
from parti_exp.runtime.images import GRID_SIZE, save_captioned_grid, save_each
from parti_exp.runtime.instantiate import instantiate
from parti_exp.runtime.progress import progress
from parti_exp.runtime.trust import trusting_checkpoints

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


def sample_prompts(module: SamplesForPrompts, train_cfg: DictConfig, cfg: DictConfig, out_dir: Path) -> list[Path]:
    """``cfg.n`` images per prompt, each the best of ``cfg.n_candidates`` when reranking."""
    prompts = list(cfg.prompts)
    sampling = sampling_of(module, cfg)
    scorer = reranking_scorer(module, train_cfg, cfg) if cfg.n_candidates > 1 else None
    if scorer is None and cfg.get("scorer_ckpt"):
        raise ConfigError(f"scorer_ckpt is for reranking: set n_candidates > 1 (got {cfg.n_candidates})")
    generator = torch.Generator(module.device).manual_seed(cfg.seed)
    paths, rows = [], []
    drawn = f" (each the best of {cfg.n_candidates})" if cfg.n_candidates > 1 else ""
    with progress(f"sampling {len(prompts)} prompts{drawn}", len(prompts) * cfg.n) as advance:
        for prompt in prompts:
            images, _ = sample_reranked(module, prompt, cfg.n, cfg.n_candidates, scorer, sampling, generator)
            paths += save_each(images.cpu(), out_dir / prompt_folder(prompt))
            rows.append((prompt, images[:GRID_SIZE].cpu()))
            advance(cfg.n)
    save_captioned_grid(rows, out_dir / "grid.png")
    return paths


def sampling_of(module: SamplesForPrompts, cfg: DictConfig) -> object:
    """The checkpoint's sampling settings with the ones the command gives (``sampling.guidance_scale=2``; null keeps
    the checkpoint's), checked: a key this decoder does not have (``use_cache`` for a masked-token model, ``steps``
    for Parti's) is named with the ones it has."""
    given = {key: value for key, value in OmegaConf.to_container(cfg.sampling).items() if value is not None}
    known = [field.name for field in dataclasses.fields(module.sampling)]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"sampling.{unknown[0]} is not a sampling setting of this {type(module).__name__} "
                          f"checkpoint; its settings are {', '.join(known)}")
    return dataclasses.replace(module.sampling, **given)


def reranking_scorer(module: SamplesForPrompts, train_cfg: DictConfig, cfg: DictConfig) -> Scorer:
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
                                          cfg.classifier_cache_dir, module.device).net
    return ClassifierScorer(classifier, source.captioner)
