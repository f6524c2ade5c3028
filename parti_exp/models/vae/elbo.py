"""The pieces of a VAE's evidence lower bound, as plain functions of tensors (Kingma & Welling 2014; Burda et al. 2016).

Log-probabilities are in nats and summed over an image's dimensions (one value per image); KL terms are per latent
dimension (``B x L``) so that a caller can sum them, clamp them (free bits) or count the active ones. Images are in
[-1, 1], the scale the DataModules serve: 8-bit data sit on 256 levels ``k / 127.5 - 1``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)
# 8-bit data in [-1, 1]: 256 levels, 2 / 255 apart.
LEVELS = 256
HALF_BIN = 1.0 / (LEVELS - 1)
# Below this probability mass the difference of two CDFs is all rounding error: the density at the bin's centre
# times the bin's width is used instead (as PixelCNN++ does).
MIN_MASS = 1e-5


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) per dimension, in closed form."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)


def log_normal(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, exp(logvar)) per dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mean).pow(2) * torch.exp(-logvar))


def bernoulli_log_prob(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(targets) under independent Bernoullis with these logits, summed per image (targets 0 or 1)."""
    return -F.binary_cross_entropy_with_logits(logits, targets, reduction="none").flatten(1).sum(1)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, exp(log_scale)^2) of continuous x, summed per image (a density: not a probability of 8-bit
    data; see ``discretized_gaussian_log_prob``)."""
    return log_normal(x, mean, 2 * log_scale).flatten(1).sum(1)


def _discretized(x, mean, log_scale, log_cdf, log_sf, cdf, log_pdf) -> torch.Tensor:
    """log P(the 8-bit level of x) for a continuous distribution integrated over each level's bin of width 2 / 255;
    the bins of the extreme levels reach to -inf and +inf, so the 256 probabilities sum to 1."""
    inv_scale = torch.exp(-log_scale)
    upper = (x - mean + HALF_BIN) * inv_scale
    lower = (x - mean - HALF_BIN) * inv_scale
    mass = cdf(upper) - cdf(lower)
    log_mid = torch.where(
        mass > MIN_MASS,
        torch.log(mass.clamp_min(1e-12)),
        log_pdf((x - mean) * inv_scale) - log_scale + math.log(2 * HALF_BIN),
    )
    # x is exactly on a level, -1 and 1 included: half a bin decides which end it is.
    log_probs = torch.where(x < -1 + HALF_BIN, log_cdf(upper), torch.where(x > 1 - HALF_BIN, log_sf(lower), log_mid))
    return log_probs.flatten(1).sum(1)


def discretized_logistic_log_prob(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log P(x) of 8-bit x under a logistic(mean, exp(log_scale)) discretised to 256 levels (Salimans et al. 2017),
    summed per image."""
    return _discretized(
        x, mean, log_scale,
        log_cdf=F.logsigmoid,
        log_sf=lambda t: F.logsigmoid(-t),
        cdf=torch.sigmoid,
        log_pdf=lambda t: -t - 2 * F.softplus(-t),
    )


def discretized_gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log P(x) of 8-bit x under N(mean, exp(log_scale)^2) discretised to 256 levels, summed per image."""
    return _discretized(
        x, mean, log_scale,
        log_cdf=torch.special.log_ndtr,
        log_sf=lambda t: torch.special.log_ndtr(-t),
        cdf=torch.special.ndtr,
        log_pdf=lambda t: -0.5 * (LOG_2PI + t.pow(2)),
    )


def importance_weighted_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """Burda et al.'s bound log (1/k) sum_i w_i from ``k x B`` log weights log p(x, z_i) - log q(z_i | x): one
    value per image, the ELBO for k = 1, tighter as k grows."""
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])


def bits_per_dim(log_likelihood: torch.Tensor, dims: int) -> torch.Tensor:
    """Nats per image (a log-likelihood or a bound on it) -> bits per dimension (a bound on -log2 p(x) / dims)."""
    return -log_likelihood / (dims * math.log(2))


def kl_weight(step: int, beta: float, warmup_steps: int) -> float:
    """The KL term's weight after ``step`` optimizer steps: rising linearly from 0 to ``beta`` over ``warmup_steps``
    (Bowman et al. 2016; Sønderby et al. 2016), then ``beta``; ``warmup_steps`` = 0 is ``beta`` from the start."""
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, step / warmup_steps)


def free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """The KL term with free bits (Kingma et al. 2016), per latent dimension: each dimension's batch-mean KL counts
    as at least ``free_bits`` nats, so no gradient pushes a dimension below that and into collapse."""
    return kl_per_dim.mean(0).clamp_min(free_bits).sum()


def active_units(
    mean_sum: torch.Tensor, mean_sq_sum: torch.Tensor, count: int | torch.Tensor, threshold: float = 1e-2
) -> torch.Tensor:
    """Burda et al.'s active units: how many latent dimensions i have Cov_x(E_q[z_i | x]) > ``threshold``, from the
    sums of the posterior means and of their squares over ``count`` images (a 0-d tensor: reading it waits for the
    device)."""
    variance = mean_sq_sum / count - (mean_sum / count).pow(2)
    return (variance > threshold).sum().float()
