"""What ``python -m parti_exp.sample`` does with a model that decodes latents: plain samples, truncated latents,
interpolation between seeds (frames, a strip and an animated GIF) and one sheet row per class. Plain samples and
interpolation serve any ``LatentImageModel`` (the VAE too); truncation, w space and classes are a GAN's.

Latents of a seed are ``torch.randn(n, latent_dim)`` from a CPU generator seeded with it, drawn in one go (so
the images do not depend on batch_size or device); the first latent of seed s is the one ``n=1 seed=s`` draws.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig
from PIL import Image

from parti_exp.errors import ConfigError
from parti_exp.models.gan.truncation import MEAN_W_LATENTS, MEAN_W_SEED, redraw_beyond, truncate_w, truncation_threshold
from parti_exp.protocols import LatentImageModel
from parti_exp.runtime.images import GRID_SIZE, save_captioned_grid, save_each, save_grid, to_uint8


def draw_latents(module: LatentImageModel, n: int, seed: int, psi: float) -> torch.Tensor:
    """``n`` latents of ``seed`` (n x latent_dim, CPU); for a z-space GAN with ψ < 1 already truncated by BigGAN's
    rule, the redraws coming from the same seeded stream."""
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n, module.latent_dim, generator=rng)
    if psi < 1.0 and not module.has_style_space:
        z = redraw_beyond(z, truncation_threshold(psi), rng)
    return z


def render(
    module: LatentImageModel,
    z: torch.Tensor,
    labels: torch.Tensor | None,
    psi: float,
    batch_size: int,
    mean_w: torch.Tensor | None = None,
) -> torch.Tensor:
    """Images (CPU) of latents from ``draw_latents``, in batches. With ψ < 1 the module truncates them as its sample
    grid does (``generate_truncated``): a style generator in w toward ``mean_w``; z drawn by ``draw_latents`` is
    already within the threshold, so nothing is redrawn (and no generator is needed)."""
    out = []
    for start in range(0, len(z), batch_size):
        zb = z[start : start + batch_size]
        lb = None if labels is None else labels[start : start + batch_size]
        if psi < 1.0:
            out.append(module.generate_truncated(zb, lb, psi, None, mean_w).cpu())
        else:
            out.append(module.generate(zb, lb).cpu())
    return torch.cat(out)


def style_mean_w(module: LatentImageModel, psi: float) -> torch.Tensor | None:
    """The mean w truncation pulls toward, when it is needed (a style generator and ψ < 1)."""
    return module.mean_w().cpu() if psi < 1.0 and module.has_style_space else None


def mean_w_note(module: LatentImageModel, psi: float) -> dict | None:
    if psi >= 1.0 or not module.has_style_space:
        return None
    return {
        "latents": MEAN_W_LATENTS,
        "seed": MEAN_W_SEED,
        "stored": False,
        "how": "recomputed from the checkpoint at every run: the mean of that seed's mapped latents",
    }


def sample_latents(
    module: LatentImageModel, train_cfg: DictConfig, cfg: DictConfig, psi: float, out_dir: Path
) -> tuple[list[Path], dict]:
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


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between two latent vectors; ``t`` = 0 and 1 return ``a`` and ``b`` exactly."""
    if t == 0.0:
        return a.clone()
    if t == 1.0:
        return b.clone()
    a64, b64 = a.double(), b.double()
    cos = torch.dot(a64 / a64.norm(), b64 / b64.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-6:  # (nearly) parallel: the great circle is a line
        return torch.lerp(a64, b64, t).to(a.dtype)
    return ((torch.sin((1 - t) * omega) * a64 + torch.sin(t * omega) * b64) / torch.sin(omega)).to(a.dtype)


def interpolate(module: LatentImageModel, cfg: DictConfig, psi: float, out_dir: Path) -> tuple[list[Path], dict]:
    """``cfg.steps`` frames from each seed to the next (the shared endpoint drawn once): spherical in z, linear in
    w for a style generator; a conditional model draws one fixed class or moves its class embedding linearly from
    each seed's class to the next."""
    seeds = list(cfg.seeds or [])
    if len(seeds) < 2:
        raise ConfigError(f"mode=interpolate needs at least 2 seeds to move between, got seeds={cfg.seeds}: "
                          "e.g. seeds=[1,2,3] (repeat a seed, seeds=[1,1], to move only between classes)")
    if cfg.steps < 2:
        raise ConfigError(f"steps={cfg.steps}: mode=interpolate needs steps >= 2 (frames from one seed to the next, "
                          "both ends included), e.g. steps=16")
    class_weights = interpolation_classes(module, cfg, len(seeds))
    mean_w = style_mean_w(module, psi)
    points = torch.cat([draw_latents(module, 1, seed, psi) for seed in seeds])
    if module.has_style_space:
        # Linear in w: the seeds' (truncated) w, each the very w their own samples are drawn from.
        points = module.map_to_w(points).cpu()
        if mean_w is not None:
            points = truncate_w(points, mean_w, psi)
    ts = torch.linspace(0, 1, cfg.steps).tolist()
    path, weights = [], []
    for i in range(len(seeds) - 1):
        for t in ts[1:] if i else ts:
            if module.has_style_space:
                path.append(torch.lerp(points[i], points[i + 1], t) if 0 < t < 1 else points[i + int(t)].clone())
            else:
                path.append(slerp(points[i], points[i + 1], t))
            if class_weights is not None:
                weights.append(torch.lerp(class_weights[i], class_weights[i + 1], t) if 0 < t < 1
                               else class_weights[i + int(t)])
    path = torch.stack(path)
    frames = []
    for start in range(0, len(path), cfg.batch_size):
        batch = path[start : start + cfg.batch_size]
        if module.has_style_space:
            frames.append(module.generate_from_w(batch).cpu())
        elif class_weights is None:
            frames.append(module.generate(batch).cpu())
        elif len(set(cfg.classes or [0])) == 1:
            # One class throughout: its own embedding lookup, exactly what plain sampling of that class does.
            frames.append(module.generate(batch, torch.full((len(batch),), int((cfg.classes or [0])[0]))).cpu())
        else:
            frames.append(module.generate_class_mix(batch, torch.stack(weights[start : start + len(batch)])).cpu())
    frames = torch.cat(frames)
    paths = save_each(frames, out_dir / "frames")
    save_grid(frames, out_dir / "strip.png", nrow=len(frames))
    save_gif(frames, out_dir / "interpolation.gif", cfg.frame_ms)
    return paths, {"frames": len(frames), "mean_w": mean_w_note(module, psi)}


def interpolation_classes(module: LatentImageModel, cfg: DictConfig, num_seeds: int) -> torch.Tensor | None:
    """One-hot class weights per seed (num_seeds x num_classes), or None for an unconditional model."""
    num_classes = module.num_classes
    if num_classes is None:
        if cfg.classes is not None:
            raise ConfigError(f"classes={cfg.classes}: {type(module).__name__} is unconditional; "
                              "drop classes= to interpolate its latents")
        return None
    classes = list(cfg.classes) if cfg.classes is not None else [0]
    if len(classes) == 1:
        classes = classes * num_seeds
    if len(classes) != num_seeds:
        raise ConfigError(f"classes={cfg.classes} with seeds={cfg.seeds}: give one class (fixed throughout) or "
                          f"one per seed ({num_seeds}), whose embeddings move with the latents")
    check_classes(classes, num_classes)
    return torch.nn.functional.one_hot(torch.tensor(classes), num_classes).float()


def check_classes(classes: list[int], num_classes: int) -> None:
    if any(c < 0 or c >= num_classes for c in classes):
        raise ConfigError(f"classes={classes} out of range for {num_classes} classes: use 0..{num_classes - 1}")


def save_gif(frames: torch.Tensor, path: Path, frame_ms: int) -> Path:
    """An animated GIF that loops, one frame per image (N x C x H x W in [-1, 1]). Pillow merges consecutive
    identical frames into one longer frame."""
    pixels = to_uint8(frames).permute(0, 2, 3, 1).numpy()
    images = [Image.fromarray(p[..., 0] if p.shape[-1] == 1 else p) for p in pixels]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    return path


def class_sheets(module: LatentImageModel, cfg: DictConfig, psi: float, out_dir: Path) -> tuple[list[Path], dict]:
    """``cfg.n_per_class`` images of each class in its own folder (``class_003/``) and one row per class in
    grid.png; every row uses the same latents, so a column shows one z across the classes."""
    num_classes = module.num_classes
    if num_classes is None:
        raise ConfigError(f"mode=classes draws one row per class: {type(module).__name__} is unconditional; "
                          "use a class-conditional checkpoint (model=cgan_pd) or mode=sample")
    if cfg.n_per_class < 1:
        raise ConfigError(f"n_per_class={cfg.n_per_class} must be >= 1, e.g. n_per_class=16")
    classes = list(cfg.classes) if cfg.classes is not None else list(range(num_classes))
    check_classes(classes, num_classes)
    z = draw_latents(module, cfg.n_per_class, cfg.seed, psi)
    mean_w = style_mean_w(module, psi)
    paths, rows = [], []
    for c in classes:
        images = render(module, z, torch.full((len(z),), c), psi, cfg.batch_size, mean_w)
        paths += save_each(images, out_dir / f"class_{c:03d}")
        rows.append((f"class {c}", images))
    save_captioned_grid(rows, out_dir / "grid.png")
    return paths, {"classes": classes, "mean_w": mean_w_note(module, psi)}
