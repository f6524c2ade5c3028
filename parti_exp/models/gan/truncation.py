"""The truncation trick: trade diversity for fidelity with one number, ψ in (0, 1].

- A generator with a style space (StyleGAN-lite) is truncated in w: ``w' = w_mean + ψ (w - w_mean)``, with
  ``w_mean`` the mean of ``MEAN_W_LATENTS`` mapped latents drawn from seed ``MEAN_W_SEED`` (recomputed from that
  seed whenever it is needed, so the same checkpoint always gives the same mean).
- A z-space GAN uses BigGAN's rule: every latent entry with ``|z_i| > threshold`` is redrawn until none is left
  (a truncated normal), not z scaled by a factor. ψ is the share of a standard normal's mass kept per entry, so
  the threshold is ``sqrt(2) erfinv(ψ)``: ψ = 1 keeps everything (no truncation), ψ -> 0 squeezes z to 0.

ψ = 1 never touches the latents: its images are bit-identical to untruncated sampling.
"""

from __future__ import annotations

import math

import torch

from parti_exp.runtime.validation import require

MEAN_W_LATENTS = 10_000
MEAN_W_SEED = 0


def check_truncation(psi: float | None, key: str = "truncation") -> float:
    """``psi`` as a float in (0, 1]; ``None`` means 1 (no truncation)."""
    if psi is None:
        return 1.0
    require(0.0 < float(psi) <= 1.0, f"{key}={psi}", "is outside (0, 1]: 1 is no truncation, smaller values trade "
            f"diversity for fidelity; set e.g. {key}=0.7 or {key}=null")
    return float(psi)


def truncation_threshold(psi: float) -> float:
    """The |z_i| bound under which a standard normal keeps the share ``psi`` of its mass (inf for ψ = 1)."""
    return math.inf if psi >= 1.0 else math.sqrt(2.0) * torch.erfinv(torch.tensor(psi, dtype=torch.float64)).item()


def redraw_beyond(z: torch.Tensor, threshold: float, generator: torch.Generator | None) -> torch.Tensor:
    """``z`` with every entry whose magnitude exceeds ``threshold`` redrawn from N(0, 1) (on the generator's
    device, the CPU for the CLI) until all are within it; entries already within it are kept as they are."""
    z = z.clone()
    outside = z.abs() > threshold
    while outside.any():  # one draw per round for just the entries still outside; ψ -> 0 needs ~1/ψ rounds
        z[outside] = torch.randn(int(outside.sum()), generator=generator, device=z.device, dtype=z.dtype)
        outside = z.abs() > threshold
    return z


def truncate_w(w: torch.Tensor, mean_w: torch.Tensor, psi: float) -> torch.Tensor:
    """``w`` moved toward ``mean_w`` (B x D, D): ψ = 0 gives the mean, ψ = 1 leaves w unchanged."""
    return mean_w + psi * (w - mean_w)
