"""What a VAE decoder's output means: the distribution p(x | z) over each pixel, the log-probability its bits per
dimension are measured with, and the image a sample shows.

- ``bernoulli``: one logit per pixel and channel, a model of the data **binarised at grey level 0.5** (uint8 >= 128
  is 1). Its log-likelihood is that of the binary images, exactly, and its bits per dimension are bits per binary
  pixel: not comparable with bits per 8-bit dimension. Samples show each pixel's probability of being on.
- ``gaussian``: a mean per pixel and channel, and a log-scale too unless ``gaussian_std`` fixes it (fixed: the
  reconstruction term is a scaled squared error). Trained on the continuous density of the [-1, 1] values; its bits
  per dimension integrate the same Gaussian over each 8-bit level's bin, so they bound -log2 P of the 8-bit data.
- ``discretized_logistic``: a mean and a log-scale per pixel and channel, a logistic integrated over each of the
  256 levels' bins (Salimans et al. 2017): trained and measured on -log P of the 8-bit data itself.
"""

from __future__ import annotations

import math

import torch

from parti_exp.models.vae.elbo import (
    HALF_BIN,
    bernoulli_log_prob,
    discretized_gaussian_log_prob,
    discretized_logistic_log_prob,
    gaussian_log_prob,
)
from parti_exp.runtime.validation import require

LIKELIHOODS = ("bernoulli", "gaussian", "discretized_logistic")
# A learned scale below half a grey level would be rewarded by the continuous density for a precision the 8-bit data
# do not have (constant background pixels would drive it to 0 and the density to infinity).
MIN_GAUSSIAN_LOG_SCALE = math.log(HALF_BIN)
# PixelCNN++'s floor: a narrower logistic puts all its mass in one level already.
MIN_LOGISTIC_LOG_SCALE = -7.0


class PixelLikelihood:
    def __init__(self, name: str, gaussian_std: float | None = None) -> None:
        require(name in LIKELIHOODS, "model.likelihood", f"must be one of {', '.join(LIKELIHOODS)}, got {name!r}")
        fixed_std_fits = gaussian_std is None or (name == "gaussian" and gaussian_std > 0)
        require(fixed_std_fits, f"model.gaussian_std={gaussian_std!r}:",
                "a fixed standard deviation > 0 for likelihood=gaussian, or null (learned per pixel)")
        self.name = name
        self.gaussian_std = gaussian_std

    @property
    def params_per_channel(self) -> int:
        """Decoder outputs per image channel: a logit or a mean, plus a log-scale when it is learned."""
        return 1 if self.name == "bernoulli" or self.gaussian_std is not None else 2

    @property
    def bpd_meaning(self) -> str:
        if self.name == "bernoulli":
            return "bits per binary pixel of the images binarised at grey level 0.5 (not per 8-bit dimension)"
        return "bits per 8-bit dimension (channel x height x width), an upper bound on -log2 P(x) / dims"

    def _split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_scale) of the Gaussian or logistic from the decoder's ``B x params*C x H x W`` output."""
        if self.gaussian_std is not None:
            return out, torch.full_like(out, math.log(self.gaussian_std))
        mean, log_scale = out.chunk(2, dim=1)
        floor = MIN_GAUSSIAN_LOG_SCALE if self.name == "gaussian" else MIN_LOGISTIC_LOG_SCALE
        return mean, log_scale.clamp_min(floor)

    def log_prob(self, out: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """The reconstruction term trained on: log p(images | z) per image, in nats."""
        out, images = out.float(), images.float()  # sums over thousands of pixels: not in half precision
        if self.name == "gaussian":
            return gaussian_log_prob(images, *self._split(out))
        return self.discrete_log_prob(out, images)

    def discrete_log_prob(self, out: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """log P(the discrete data | z) per image, in nats: what bits per dimension are measured with."""
        out, images = out.float(), images.float()
        if self.name == "bernoulli":
            return bernoulli_log_prob(out, binarised(images))
        if self.name == "gaussian":
            return discretized_gaussian_log_prob(images, *self._split(out))
        return discretized_logistic_log_prob(images, *self._split(out))

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        """The image a decoder output shows, in [-1, 1]: the Bernoulli's probabilities, the location otherwise."""
        out = out.float()
        if self.name == "bernoulli":
            return 2 * torch.sigmoid(out) - 1
        return self._split(out)[0].clamp(-1, 1)


def binarised(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> 0/1 at grey level 0.5: uint8 values >= 128 map to x > 0."""
    return (images > 0).float()
