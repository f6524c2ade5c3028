"""What ``python -m parti_exp.project`` does: find the latent of a real image under a GAN checkpoint, as stylegan2-ada's
``projector.py`` does, and write what ``python -m parti_exp.sample`` edits (``parti_exp.inference.latent_file``).

The optimisation (Adam, betas 0.9 / 0.999) follows stylegan2-ada's recipe: a learning rate ramped up over the first
5% of the steps and down (cosine) over the last 25%, Gaussian noise added to the latent, its scale falling to 0 over
the first 75% of the steps (quadratically), and, for a generator with noise inputs, the noise maps optimised too,
regularised toward spatially uncorrelated noise at every scale (weight 1e5) and renormalised after every step.

- StyleGAN-lite: ``space=w`` (one w, starting from the mean w of 10k mapped latents) or ``space=w+`` (one w per
  layer, same start); the latent noise is relative to the spread of w.
- Every other GAN: ``space=z``, starting from the best of ``candidates`` draws of the prior, with the prior kept by
  ``prior_weight`` times the Gaussian negative log-likelihood per dimension, ``mean(z^2) / 2`` (a MAP estimate).
  A class-conditional GAN projects under ``label=`` or, with ``label=null``, the class of the best candidate over
  all classes.

Distances (``distance=``): ``pixels`` (mean squared error in [-1, 1]), ``ssim`` (1 - SSIM), ``discriminator`` (the
checkpoint's D's penultimate activations) and ``classifier`` (the metrics' digit classifier's features); the two
feature distances are mean squared differences divided by the target's mean squared feature. docs/projection.md
says what each costs.

Images: a file's channels are converted to the model's; a square image of another size is resized to the model's
(bicubic, as the data pipeline resizes); a non-square one is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from omegaconf import DictConfig
from PIL import Image

from parti_exp.data.decode import resize_images
from parti_exp.errors import ConfigError
from parti_exp.inference.edit_inputs import input_images, output_folders, read_image
from parti_exp.inference.latent import save_gif
from parti_exp.inference.latent_file import LatentFile, render_latent, save_latent
from parti_exp.inference.manifest import file_sha256, write_manifest
from parti_exp.metrics.digit_classifier import load_classifier_file, load_or_train_classifier
from parti_exp.metrics.psnr_ssim import psnr, ssim
from parti_exp.models.gan.truncation import MEAN_W_LATENTS, MEAN_W_SEED
from parti_exp.protocols import HasFamily, HasImageFeatures, LayeredStyleGenerator
from parti_exp.runtime.images import save_grid, save_uint8, to_uint8
from parti_exp.runtime.instantiate import instantiate
from parti_exp.runtime.torch_utils import eval_mode, frozen

DISTANCES = ("pixels", "ssim", "discriminator", "classifier")
# Per image: B images in [-1, 1] -> B distances to the target.
Distance = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class ProjectionSettings:
    """The optimisation's knobs (``conf/project.yaml`` documents each)."""

    steps: int = 300
    lr: float = 0.1
    space: str | None = None
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    latent_noise: float = 0.05
    latent_noise_ramp: float = 0.75
    optimize_noise: bool = True
    noise_weight: float = 1e5
    prior_weight: float = 1.0
    candidates: int = 256
    gif_every: int = 10
    seed: int = 0


@dataclass
class Projection:
    latent: LatentFile
    image: torch.Tensor  # 1 x C x H x W in [-1, 1]: what the saved latent regenerates
    frames: torch.Tensor  # N x C x H x W: the optimisation, every gif_every steps, ending with ``image``


def check_projectable(module: LightningModule, ckpt_path: str) -> None:
    """Only a GAN maps latents to images; every other checkpoint is refused with what to do instead."""
    family = module.family if isinstance(module, HasFamily) else None
    if family != "gan":
        raise ConfigError(f"ckpt_path={ckpt_path} is a {type(module).__name__} checkpoint (family {family!r}): "
                          "project finds a GAN's latent for an image; give the checkpoints/last.ckpt of a GAN run "
                          "(model=dcgan, wgan_gp, sngan, cgan_pd, stylegan_lite). A VAE encodes images itself; a "
                          "text-to-image model edits them with python -m parti_exp.edit")


def read_target(path: Path, img_size: int, channels: int) -> torch.Tensor:
    """The image at ``path`` as ``1 x channels x img_size x img_size`` in [-1, 1]: converted to the model's channels,
    resized when square, refused when not."""
    image = read_image(path, channels)
    height, width = image.shape[-2:]
    if height != width:
        raise ConfigError(f"image {path} is {width} x {height} px: the model draws {img_size} x {img_size} squares; "
                          "crop or pad it to a square (it is resized, not cropped)")
    if height != img_size:
        image = torch.from_numpy(resize_images(image.numpy()[None], img_size, Image.Resampling.BICUBIC))[0]
    return image.float()[None] / 127.5 - 1


def feature_distance(features: Callable[[torch.Tensor], torch.Tensor], target: torch.Tensor) -> Distance:
    """Mean squared feature difference over the target's mean squared feature: scale-free across networks."""
    with torch.no_grad():
        wanted = features(target)
        scale = wanted.square().mean().clamp_min(1e-12)
    return lambda images: (features(images) - wanted).square().mean(dim=1) / scale


def make_distance(
    name: str, target: torch.Tensor, module: LightningModule, classifier: torch.nn.Module | None
) -> Distance:
    if name == "pixels":
        return lambda images: (images - target).square().mean(dim=(1, 2, 3))
    if name == "ssim":
        return lambda images: 1 - ssim(images, target.expand_as(images))
    if name == "discriminator":
        critic = module.discriminator
        if not isinstance(critic, HasImageFeatures):
            raise ConfigError(f"distance=discriminator reads D's penultimate activations; {type(critic).__name__} "
                              "does not expose them: use distance=pixels, ssim or classifier")
        return feature_distance(lambda images: critic.features(images).flatten(1).float(), target)
    if name == "classifier":
        # The classifier reads uint8-scaled pixels; (x + 1) * 127.5 is that scale, kept differentiable.
        return feature_distance(lambda images: classifier((images + 1) * 127.5)[0], target)
    raise ConfigError(f"distance={name} is not one of {', '.join(DISTANCES)}")


def learning_rate(settings: ProjectionSettings, t: float) -> float:
    """stylegan2-ada's schedule at progress ``t`` in [0, 1): linear warm-up, cosine ramp-down."""
    ramp = min(1.0, (1.0 - t) / settings.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return settings.lr * ramp * min(1.0, t / settings.lr_rampup)


def noise_regularization(maps: list[torch.Tensor]) -> torch.Tensor:
    """Squared autocorrelation of each map (at least one) with itself shifted one pixel down and right, at every
    scale down to 8 x 8 (stylegan2-ada's): zero for white noise, large when the maps carry the image's structure."""
    total = maps[0].new_zeros(())
    for noise in maps:
        while True:
            total = total + (noise * noise.roll(1, dims=3)).mean().square()
            total = total + (noise * noise.roll(1, dims=2)).mean().square()
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, 2)
    return total


class LatentSearch:
    """The latent being optimised and how it becomes an image, for one of the spaces."""

    def __init__(self, module: LightningModule, settings: ProjectionSettings, label: int | None,
                 distance: Distance, rng: torch.Generator) -> None:
        self.module = module
        self.rng = rng
        self.net = module.sampling_generator
        self.device = module.device
        self.space = settings.space or ("w" if isinstance(self.net, LayeredStyleGenerator) else "z")
        if self.space in ("w", "w+") and not isinstance(self.net, LayeredStyleGenerator):
            raise ConfigError(f"space={self.space}: {type(self.net).__name__} has no w space (only model=stylegan_lite "
                              "has one): use space=z or leave space unset")
        if self.space not in ("z", "w", "w+"):
            raise ConfigError(f"space={self.space} is not one of z, w, w+")
        self.noise: list[torch.Tensor] = []
        self.label = label
        if self.space == "z":
            self.latent, self.label = self._best_candidate(settings, distance, rng)
            self.spread = 1.0
        else:
            z = torch.randn(MEAN_W_LATENTS, self.net.latent_dim, generator=torch.Generator().manual_seed(MEAN_W_SEED))
            w = self.net.map_to_w(z.to(self.device))
            mean = w.mean(dim=0, keepdim=True)
            # The root mean squared distance of a mapped latent from the mean: the scale of the latent noise.
            self.spread = float((w - mean).square().sum(dim=1).mean().sqrt())
            self.latent = mean[:, None].repeat(1, self.net.num_ws, 1) if self.space == "w+" else mean
            if settings.optimize_noise:
                self.noise = [torch.randn(n.fixed.shape, generator=rng).to(self.device).requires_grad_(True)
                              for n in self.net.noise_inputs]
        self.latent = self.latent.detach().clone().requires_grad_(True)
        self.labels = None if self.label is None else torch.tensor([self.label], device=self.device)

    def _best_candidate(self, settings: ProjectionSettings, distance: Distance,
                        rng: torch.Generator) -> tuple[torch.Tensor, int | None]:
        """The prior draw (and, for a conditional G without ``label``, the class) nearest the target."""
        z = torch.randn(settings.candidates, self.net.latent_dim, generator=rng).to(self.device)
        num_classes = self.module.num_classes
        classes = [None] if num_classes is None else [self.label] if self.label is not None else range(num_classes)
        best = (math.inf, None, None)
        with torch.no_grad():
            for c in classes:
                labels = None if c is None else torch.full((len(z),), c, device=self.device)
                d = distance(self.net(z, labels))
                i = int(d.argmin())
                if float(d[i]) < best[0]:
                    best = (float(d[i]), z[i : i + 1], c)
        return best[1], best[2]

    def parameters(self) -> list[torch.Tensor]:
        return [self.latent, *self.noise]

    def images(self, jitter: float = 0.0) -> torch.Tensor:
        # The jitter comes from the projection's own seeded stream, not the global one: the result must not depend on
        # what ran before (building the module from a checkpoint or from a model folder draws differently).
        if not jitter:
            latent = self.latent
        else:
            latent = self.latent + torch.randn(self.latent.shape, generator=self.rng).to(self.latent) * jitter
        if self.space == "z":
            return self.net(latent, self.labels)
        return self.net.synthesis(latent, None, self.noise or None)

    def prior_term(self, settings: ProjectionSettings) -> torch.Tensor:
        if self.space == "z":
            return settings.prior_weight * 0.5 * self.latent.square().mean()
        return settings.noise_weight * noise_regularization(self.noise) if self.noise else self.latent.new_zeros(())

    @torch.no_grad()
    def renormalize_noise(self) -> None:
        for noise in self.noise:
            noise -= noise.mean()
            noise *= noise.square().mean().rsqrt()

    def result(self, checkpoint_sha256: str, details: dict) -> LatentFile:
        return LatentFile(self.latent.detach().float().cpu(), self.space, checkpoint_sha256, self.label,
                          [n.detach().float().cpu() for n in self.noise], details)


def project(module: LightningModule, target: torch.Tensor, settings: ProjectionSettings, distance: Distance,
            label: int | None, checkpoint_sha256: str) -> Projection:
    """Optimise a latent whose image is near ``target`` (1 x C x H x W in [-1, 1]) under ``distance``."""
    net = module.sampling_generator
    rng = torch.Generator().manual_seed(settings.seed)
    frames = []
    with eval_mode(net), frozen(net), eval_mode(module.discriminator), frozen(module.discriminator):
        search = LatentSearch(module, settings, label, distance, rng)
        optimizer = torch.optim.Adam(search.parameters(), betas=(0.9, 0.999), lr=settings.lr)
        with torch.no_grad():
            start = float(distance(search.images())[0])
        for step in range(settings.steps):
            t = step / settings.steps
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(settings, t)
            jitter = search.spread * settings.latent_noise * max(0.0, 1.0 - t / settings.latent_noise_ramp) ** 2
            loss = distance(search.images(jitter)).sum() + search.prior_term(settings)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            search.renormalize_noise()
            if step % settings.gif_every == 0:
                with torch.no_grad():
                    frames.append(search.images().cpu())
        with torch.no_grad():
            end = float(distance(search.images())[0])
    latent = search.result(checkpoint_sha256, {"distance_start": start, "distance_end": end})
    # The image the saved latent regenerates, by the path the sample command takes: the PNG is its output.
    image = render_latent(module, latent)
    return Projection(latent, image, torch.cat([*frames, image]))


def settings_from(cfg: DictConfig) -> ProjectionSettings:
    settings = ProjectionSettings(**{k: cfg[k] for k in ProjectionSettings.__dataclass_fields__ if k in cfg})
    if not (isinstance(settings.steps, int) and settings.steps >= 1):
        raise ConfigError(f"steps={settings.steps} must be an integer >= 1, e.g. steps=300")
    if settings.lr <= 0 or settings.candidates < 1 or settings.gif_every < 1:
        raise ConfigError(f"lr={settings.lr}, candidates={settings.candidates}, gif_every={settings.gif_every}: each "
                          "must be > 0")
    return settings


def projection_classifier(cfg: DictConfig, train_cfg: DictConfig, module: LightningModule) -> torch.nn.Module:
    """The digit classifier of ``classifier_ckpt``, else the metrics' classifier of the checkpoint's training data
    (trained once and cached, as the metrics do)."""
    if cfg.get("classifier_ckpt"):
        net, _ = load_classifier_file(cfg.classifier_ckpt, "classifier_ckpt")
        return net.to(module.device)
    datamodule = instantiate(train_cfg.data)
    datamodule.setup("fit")
    if not datamodule.num_classes:
        raise ConfigError(f"distance=classifier needs labelled training data to train its classifier; "
                          f"{train_cfg.data._target_} has none: give classifier_ckpt= or another distance")
    return load_or_train_classifier(datamodule.train_set, datamodule.val_set, datamodule.num_classes,
                                    cfg.classifier_cache_dir, module.device, datamodule.name).net


def check_label(module: LightningModule, label: int | None) -> int | None:
    num_classes = module.num_classes
    if label is None:
        return None
    if num_classes is None:
        raise ConfigError(f"label={label}: {type(module.sampling_generator).__name__} is unconditional; drop label=")
    if not (isinstance(label, int) and 0 <= label < num_classes):
        raise ConfigError(f"label={label} out of range for {num_classes} classes: use 0..{num_classes - 1}, or "
                          "label=null to search over the classes")
    return label


def project_images(module: LightningModule, cfg: DictConfig, train_cfg: DictConfig, checkpoint: dict,
                   out_dir: Path) -> list[Path]:
    """Project every image of ``cfg.image``: ``<name>.png`` (the projection), ``<name>.npz`` (its latent),
    ``<name>.gif`` (the optimisation), then sheet.png (targets over projections) and manifest.json."""
    check_projectable(module, cfg.ckpt_path)
    settings = settings_from(cfg)
    label = check_label(module, cfg.label)
    if cfg.distance not in DISTANCES:
        raise ConfigError(f"distance={cfg.distance} is not one of {', '.join(DISTANCES)}")
    paths = input_images(cfg.image)
    img_size, channels = int(train_cfg.data.img_size), int(train_cfg.data.channels)
    targets = [read_target(path, img_size, channels) for path in paths]  # every file read before any work
    classifier = projection_classifier(cfg, train_cfg, module) if cfg.distance == "classifier" else None
    sha = file_sha256(cfg.ckpt_path)
    written, results, shown = [], [], []
    for path, name, target in zip(paths, output_folders(paths), targets):
        target = target.to(module.device)
        distance = make_distance(cfg.distance, target, module, classifier)
        result = project(module, target, settings, distance, label, sha)
        result.latent.details.update({"source": path.name, "psnr": float(psnr(result.image, target.cpu())[0])})
        save_latent(out_dir / f"{name}.npz", result.latent)
        written.append(save_uint8(to_uint8(result.image)[0], out_dir / f"{name}.png"))
        save_gif(result.frames, out_dir / f"{name}.gif", cfg.frame_ms)
        shown += [target.cpu(), result.image]
        results.append({"image": str(path), "latent": f"{name}.npz", "space": result.latent.space,
                        "label": result.latent.label, **result.latent.details})
    save_grid(torch.cat(shown), out_dir / "sheet.png", nrow=2)
    write_manifest(out_dir, cfg, checkpoint, {"projections": results}, written)
    return written
