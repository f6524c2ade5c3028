"""``python -m parti_exp.sample latents=[a.npz,b.npz]``: the sample command's tools on projected latents
(``parti_exp.inference.latent_file``) instead of seeds. ``mode=sample`` draws each latent's image (truncated with
``truncation=ψ``), ``mode=interpolate`` moves from each latent to the next: linearly in w (W+ when either end is W+)
with the noise maps moving linearly between the two ends' maps, spherically in z, a conditional GAN's class
embedding linearly between the ends' classes.

Every frame is drawn one image at a time by ``render_latent``, the projector's own path, so the first and last
frames are the projected images to the byte.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from parti_exp.errors import ConfigError
from parti_exp.inference.latent import mean_w_note, save_gif, slerp, style_mean_w
from parti_exp.inference.latent_file import LatentFile, check_latent, load_latent, render_latent
from parti_exp.inference.manifest import file_sha256
from parti_exp.models.gan.truncation import redraw_beyond, truncate_w, truncation_threshold
from parti_exp.protocols import LatentImageModel
from parti_exp.runtime.images import save_each, save_grid


def read_latents(module: LatentImageModel, cfg: DictConfig) -> list[LatentFile]:
    sha = file_sha256(cfg.ckpt_path)
    latents = [load_latent(path) for path in cfg.latents]
    for path, latent in zip(cfg.latents, latents):
        check_latent(module, latent, path, sha)
    return latents


def sample_latent_files(
    module: LatentImageModel, cfg: DictConfig, psi: float, out_dir: Path
) -> tuple[list[Path], dict]:
    """One image per latent file, in the order given, and grid.png."""
    latents = read_latents(module, cfg)
    mean_w = style_mean_w(module, psi)
    rng = torch.Generator().manual_seed(cfg.seed)  # BigGAN's redraws of a truncated z
    images = torch.cat([render_latent(module, latent, psi, mean_w, rng) for latent in latents])
    paths = save_each(images, out_dir)
    save_grid(images, out_dir / "grid.png")
    return paths, {"latents": [str(p) for p in cfg.latents], "mean_w": mean_w_note(module, psi)}


def truncated(latent: LatentFile, psi: float, mean_w: torch.Tensor | None, rng: torch.Generator) -> LatentFile:
    """The latent moved as ``render_latent`` truncates it, so a path between truncated ends can be drawn at ψ = 1."""
    if psi >= 1.0:
        return latent
    if latent.space == "z":
        moved = redraw_beyond(latent.latent, truncation_threshold(psi), rng)
    else:
        moved = truncate_w(latent.latent, mean_w, psi)
    return LatentFile(moved, latent.space, latent.checkpoint_sha256, latent.label, latent.noise, latent.details)


def between(a: LatentFile, b: LatentFile, t: float, space: str, num_ws: int, fixed: list[torch.Tensor]) -> LatentFile:
    """The latent at ``t`` on the path from ``a`` to ``b``; the ends themselves at t = 0 and 1."""
    if t == 0.0 or t == 1.0:
        return a if t == 0.0 else b
    if space == "z":
        return LatentFile(slerp(a.latent[0], b.latent[0], t)[None], "z", a.checkpoint_sha256, a.label)
    wa, wb = (x.latent if space == "w" else x.as_w_plus(num_ws) for x in (a, b))
    noise = []
    if a.noise or b.noise:  # the fixed maps stand in at an end projected without noise maps
        noise = [torch.lerp(ma, mb, t) for ma, mb in zip(a.noise or fixed, b.noise or fixed)]
    return LatentFile(torch.lerp(wa, wb, t), space, a.checkpoint_sha256, None, noise)


def interpolate_latent_files(module: LatentImageModel, cfg: DictConfig, psi: float,
                             out_dir: Path) -> tuple[list[Path], dict]:
    """``cfg.steps`` frames from each latent file to the next: frames/, strip.png and interpolation.gif."""
    if len(cfg.latents) < 2:
        raise ConfigError(f"mode=interpolate needs at least 2 latents to move between, got latents={cfg.latents}")
    if cfg.steps < 2:
        raise ConfigError(f"steps={cfg.steps}: mode=interpolate needs steps >= 2, e.g. steps=16")
    if cfg.get("seeds") or cfg.get("classes") is not None:
        raise ConfigError("latents= gives the path's ends and their classes: drop seeds= and classes=")
    latents = read_latents(module, cfg)
    spaces = {latent.space for latent in latents}
    if "z" in spaces and len(spaces) > 1:
        raise ConfigError(f"latents={cfg.latents} mix z and w latents: there is no path between the two spaces; "
                          "project every image in the same space")
    space = "z" if spaces == {"z"} else "w+" if "w+" in spaces else "w"
    generator = module.sampling_generator
    num_ws = generator.num_ws if space != "z" else 0
    fixed = [n.fixed.cpu() for n in generator.noise_inputs] if space != "z" else []
    mean_w = style_mean_w(module, psi)
    rng = torch.Generator().manual_seed(cfg.seed)
    ends = [truncated(latent, psi, mean_w, rng) for latent in latents]
    ts = torch.linspace(0, 1, cfg.steps).tolist()
    frames = []
    for i in range(len(ends) - 1):
        a, b = ends[i], ends[i + 1]
        for t in ts[1:] if i else ts:
            if a.label != b.label and 0 < t < 1:
                # Between two classes: the class embeddings mixed, as mode=interpolate moves between seeds' classes.
                weights = torch.zeros(1, module.num_classes)
                weights[0, a.label], weights[0, b.label] = 1 - t, t
                frames.append(module.generate_class_mix(between(a, b, t, space, num_ws, fixed).latent, weights).cpu())
            else:
                frames.append(render_latent(module, between(a, b, t, space, num_ws, fixed)))
    frames = torch.cat(frames)
    paths = save_each(frames, out_dir / "frames")
    save_grid(frames, out_dir / "strip.png", nrow=len(frames))
    save_gif(frames, out_dir / "interpolation.gif", cfg.frame_ms)
    return paths, {"frames": len(frames), "latents": [str(p) for p in cfg.latents], "mean_w": mean_w_note(module, psi)}
