"""A projected latent on disk (``<image>.npz``, written by ``python -m parti_exp.project``): the latent, the space it
lives in, the noise maps and class it was projected with, and the SHA-256 of the checkpoint it belongs to, so that
``python -m parti_exp.sample latents=[a.npz,...]`` regenerates or edits exactly that image, and refuses a latent of
another checkpoint.

Spaces: ``z`` (1 x latent_dim, a GAN's input), ``w`` (1 x w_dim, StyleGAN-lite's mapped space, the same w for
every layer) and ``w+`` (1 x num_ws x w_dim, one w per layer). Read with ``allow_pickle=False``: only arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from parti_exp.errors import BadDataError, ConfigError, MissingInputError
from parti_exp.models.gan.truncation import redraw_beyond, truncate_w, truncation_threshold
from parti_exp.protocols import LatentImageModel

SPACES = ("z", "w", "w+")
FORMAT = "parti_exp projected latent 1"


@dataclass
class LatentFile:
    """One projected latent: ``latent`` (float32, CPU, with its batch dimension of 1), its ``space``, the class
    (None: unconditional), the noise maps (empty: the generator's fixed maps) and the checkpoint's SHA-256."""

    latent: torch.Tensor
    space: str
    checkpoint_sha256: str
    label: int | None = None
    noise: list[torch.Tensor] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def as_w_plus(self, num_ws: int) -> torch.Tensor:
        """The latent in W+ (1 x num_ws x w_dim): a ``w`` repeated for every layer."""
        return self.latent[:, None].expand(-1, num_ws, -1) if self.space == "w" else self.latent


def save_latent(path: Path, latent: LatentFile) -> Path:
    """``latent`` as ``path`` (.npz); ``details`` (numbers and strings) stored beside it."""
    arrays = {
        "format": np.array(FORMAT),
        "latent": latent.latent.detach().float().cpu().numpy(),
        "space": np.array(latent.space),
        "checkpoint_sha256": np.array(latent.checkpoint_sha256),
        "label": np.array(-1 if latent.label is None else latent.label),
        "noise_maps": np.array(len(latent.noise)),
        **{f"noise_{i}": m.detach().float().cpu().numpy() for i, m in enumerate(latent.noise)},
        **{f"detail_{k}": np.array(v) for k, v in latent.details.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def load_latent(path: str | Path) -> LatentFile:
    """The projected latent at ``path``; a missing file or one ``save_latent`` did not write is refused."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"latent file {path} does not exist: give the .npz files `python -m parti_exp.project` "
                                "wrote beside its projected images")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError) as error:
        raise BadDataError(f"latent file {path} is not a .npz of arrays ({error})") from None
    if str(arrays.get("format", "")) != FORMAT or str(arrays.get("space", "")) not in SPACES:
        raise BadDataError(f"latent file {path} is not a projected latent written by `python -m parti_exp.project`")
    label = int(arrays["label"])
    return LatentFile(
        latent=torch.from_numpy(arrays["latent"]),
        space=str(arrays["space"]),
        checkpoint_sha256=str(arrays["checkpoint_sha256"]),
        label=None if label < 0 else label,
        noise=[torch.from_numpy(arrays[f"noise_{i}"]) for i in range(int(arrays["noise_maps"]))],
        details={k.removeprefix("detail_"): v.item() for k, v in arrays.items() if k.startswith("detail_")},
    )


def check_latent(module: LatentImageModel, latent: LatentFile, path: str | Path, checkpoint_sha256: str) -> None:
    """Refuse a latent of another checkpoint, or of a space or size this module does not draw from."""
    if latent.checkpoint_sha256 != checkpoint_sha256:
        raise ConfigError(f"latent file {path} was projected under another checkpoint (SHA-256 "
                          f"{latent.checkpoint_sha256[:12]}…, this one is {checkpoint_sha256[:12]}…): a latent means "
                          "an image only under its own generator; project the image again with this ckpt_path")
    if latent.space != "z" and not module.has_style_space:
        raise ConfigError(f"latent file {path} lives in {latent.space} space, which {type(module).__name__} does not "
                          "have")
    if latent.latent.shape[-1] != module.latent_dim:
        raise ConfigError(f"latent file {path} has {latent.latent.shape[-1]} dimensions, the model {module.latent_dim}")


def render_latent(
    module: LatentImageModel,
    latent: LatentFile,
    psi: float = 1.0,
    mean_w: torch.Tensor | None = None,
    rng: torch.Generator | None = None,
) -> torch.Tensor:
    """The image (1 x C x H x W, CPU, in [-1, 1]) of a projected latent, with its class and noise maps; with ψ < 1
    truncated as the sample command truncates: w (or each layer's w) toward ``mean_w``, a z by BigGAN's redraw of
    entries beyond the threshold from ``rng``."""
    labels = None if latent.label is None else torch.tensor([latent.label])
    if latent.space == "z":
        z = latent.latent if psi >= 1.0 else redraw_beyond(latent.latent, truncation_threshold(psi), rng)
        return module.generate(z, labels).cpu()
    w = latent.latent if psi >= 1.0 else truncate_w(latent.latent, mean_w, psi)
    return module.generate_from_w(w, labels, latent.noise or None).cpu()
