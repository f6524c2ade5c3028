"""One sampler per model family, in a registry keyed by the family a module names (``family``, ``HasFamily``): what
``python -m parti_exp.sample`` draws from a checkpoint, and how ``python -m parti_exp.evaluate`` readies a module
for the metrics. Each sampler refuses the sample options that are not for its family, naming the option and the
remedy; a family that draws nothing (an image tokenizer, a scorer) has a sampler that says so.

Adding a model family is one more entry in ``SAMPLERS``: the commands stay as they are.
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import LightningDataModule, LightningModule
from omegaconf import DictConfig

from parti_exp.errors import ConfigError
from parti_exp.inference.latent import class_sheets, interpolate, sample_latents
from parti_exp.inference.projected_latents import interpolate_latent_files, sample_latent_files
from parti_exp.inference.prompts import sample_prompts
from parti_exp.inference.translation import translate_held_out
from parti_exp.models.gan.truncation import check_truncation
from parti_exp.protocols import HasFamily


class Sampler:
    """How a family's checkpoints are sampled. ``check`` refuses what the family cannot do with the command's
    options, ``sample`` writes the images (and returns their paths and what the manifest records besides the
    settings), ``prepare_for_metrics`` readies a module for ``evaluate``."""

    takes_prompts = False
    # False for a family whose checkpoints make no images (an exported folder of one has no samples.png).
    draws_images = True

    def check(self, module: LightningModule, cfg: DictConfig) -> None:
        if cfg.get("prompts") is not None and not self.takes_prompts:
            raise ConfigError(f"prompts= needs a text-to-image checkpoint (model=parti or muse); {cfg.ckpt_path} is a "
                              f"{type(module).__name__}")

    def sample(
        self, module: LightningModule, train_cfg: DictConfig, cfg: DictConfig, out_dir: Path
    ) -> tuple[list[Path], dict]:
        raise NotImplementedError(f"{type(self).__name__} must implement sample")

    def prepare_for_metrics(self, module: LightningModule, datamodule: LightningDataModule) -> None:
        """Nothing to do for a module that draws its images on its own."""


class LatentSampler(Sampler):
    """A model that decodes standard normal latents (``LatentImageModel``): plain samples, ``mode=interpolate`` and,
    for a conditional one, ``mode=classes``; ``truncation=ψ`` only where the family truncates (the GANs)."""

    def __init__(self, truncates: bool) -> None:
        self.truncates = truncates

    def check(self, module: LightningModule, cfg: DictConfig) -> None:
        super().check(module, cfg)
        if check_truncation(cfg.truncation) < 1.0 and not self.truncates:
            raise ConfigError(f"truncation={cfg.truncation} is the GANs' truncation trick; {cfg.ckpt_path} is a "
                              f"{type(module).__name__}, which samples its prior as it is: drop truncation=")
        if cfg.get("latents") and not self.truncates:
            raise ConfigError(f"latents= are a GAN's projected latents (python -m parti_exp.project); {cfg.ckpt_path} "
                              f"is a {type(module).__name__}: drop latents=")
        if cfg.get("latents") and cfg.mode == "classes":
            raise ConfigError("latents= with mode=classes: a projected latent keeps its own class; use mode=sample "
                              "or mode=interpolate")

    def sample(
        self, module: LightningModule, train_cfg: DictConfig, cfg: DictConfig, out_dir: Path
    ) -> tuple[list[Path], dict]:
        psi = check_truncation(cfg.truncation)
        if cfg.get("latents") and cfg.mode == "interpolate":
            return interpolate_latent_files(module, cfg, psi, out_dir)
        if cfg.get("latents"):
            return sample_latent_files(module, cfg, psi, out_dir)
        if cfg.mode == "interpolate":
            return interpolate(module, cfg, psi, out_dir)
        if cfg.mode == "classes":
            return class_sheets(module, cfg, psi, out_dir)
        return sample_latents(module, train_cfg, cfg, psi, out_dir)


class PromptSampler(Sampler):
    """The text-to-image models (either decoder, ``SamplesForPrompts``): ``n`` images per prompt, reranked with
    ``n_candidates > 1``."""

    takes_prompts = True

    def check(self, module: LightningModule, cfg: DictConfig) -> None:
        if cfg.get("prompts") is None:
            raise ConfigError(f"{cfg.ckpt_path} is a text-to-image checkpoint: say what to draw with "
                              "prompts='[\"a handwritten seven\"]'")
        if cfg.mode != "sample" or cfg.truncation is not None:
            raise ConfigError(f"mode={cfg.mode} truncation={cfg.truncation} are for GAN checkpoints; a text-to-image "
                              "checkpoint samples per prompt: drop them")

    def sample(
        self, module: LightningModule, train_cfg: DictConfig, cfg: DictConfig, out_dir: Path
    ) -> tuple[list[Path], dict]:
        return sample_prompts(module, train_cfg, cfg, out_dir), {}

    def prepare_for_metrics(self, module: LightningModule, datamodule: LightningDataModule) -> None:
        # Its samples are prompted with the captions of the real images they are compared with.
        module.use_captions(datamodule.caption_source())


class TranslationSampler(Sampler):
    """An image-to-image model (pix2pix, CycleGAN): ``n`` translations of held-out images of its dataset, grid.png
    with their inputs and targets; its own images go through ``python -m parti_exp.translate``."""

    def check(self, module: LightningModule, cfg: DictConfig) -> None:
        super().check(module, cfg)
        if cfg.mode != "sample" or cfg.truncation is not None:
            raise ConfigError(f"mode={cfg.mode} truncation={cfg.truncation} are for GAN checkpoints; {cfg.ckpt_path} "
                              "is an image-to-image model, which translates held-out images of its dataset: drop them "
                              "(to translate your own images: python -m parti_exp.translate ckpt_path=... image=...)")

    def sample(
        self, module: LightningModule, train_cfg: DictConfig, cfg: DictConfig, out_dir: Path
    ) -> tuple[list[Path], dict]:
        return translate_held_out(module, train_cfg, cfg, out_dir)

    def prepare_for_metrics(self, module: LightningModule, datamodule: LightningDataModule) -> None:
        # Its images are translations of the held-out inputs, compared with the dataset's images.
        module.use_held_out(datamodule)


class DrawsNothing(Sampler):
    """A family whose checkpoints make no images of their own; ``refusal`` says what to do with one instead
    (``{ckpt_path}`` and ``{module}``, the module's class name, are filled in)."""

    draws_images = False

    def __init__(self, refusal: str) -> None:
        self.refusal = refusal

    def check(self, module: LightningModule, cfg: DictConfig) -> None:
        super().check(module, cfg)
        raise ConfigError(self.refusal.format(ckpt_path=cfg.ckpt_path, module=type(module).__name__))


SAMPLERS: dict[str, Sampler] = {
    "gan": LatentSampler(truncates=True),
    "vae": LatentSampler(truncates=False),
    "text_to_image": PromptSampler(),
    "image_to_image": TranslationSampler(),
    "vqgan": DrawsNothing(
        "{ckpt_path} is a {module} checkpoint (model=vqgan: an image tokenizer): it reconstructs images, it does not "
        "sample them; train model=parti or model=muse with model.tokenizer_ckpt pointing at it"
    ),
    "contrastive": DrawsNothing(
        "{ckpt_path} is a contrastive scorer (model=contrastive): it scores images, it does not make them; pass it "
        "as scorer_ckpt= with a text-to-image ckpt_path and n_candidates > 1"
    ),
}


def sampler_for(module: LightningModule, ckpt_path: str) -> Sampler:
    """The sampler of ``module``'s family; ``ckpt_path`` names the checkpoint it came from in the error."""
    family = module.family if isinstance(module, HasFamily) else None
    if family not in SAMPLERS:
        raise ConfigError(f"{ckpt_path} is a {type(module).__name__} checkpoint of no model family that parti_exp "
                          f"samples (family={family!r}; known: {', '.join(SAMPLERS)})")
    return SAMPLERS[family]
