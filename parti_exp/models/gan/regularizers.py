"""Regularizers: penalties added to D's loss, computed from the critic itself, and to G's (path length).

A D regularizer is called as ``regularizer(critic, real, fake, grad_scale)``, a G regularizer as
``regularizer(generator, batch_size, labels, grad_scale)``; each has an ``every`` attribute k: the training loop
applies it on every k-th D (or G) step only, and it scales itself to make up for the others (lazy regularization).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from parti_exp.errors import ConfigError
from parti_exp.protocols import Critic, LayeredStyleGenerator
from parti_exp.runtime.validation import is_int_at_least, require


class GradientPenalty:
    """WGAN-GP (Gulrajani et al. 2017): weight * E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates
    x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1] per sample.

    ``grad_scale`` is the mixed-precision loss scale: the gradient is taken of the *scaled* critic output
    (so fp16 gradients do not underflow) and unscaled, as torch.amp's gradient-penalty recipe does.
    An overflow makes the penalty inf, which the scaler then sees in D's gradients and skips the step.
    """

    name = "gp"
    every = 1  # the penalty of WGAN-GP's algorithm: on every critic step

    def __init__(self, weight: float = 10.0) -> None:
        require(weight >= 0, "gradient penalty weight", f"must be >= 0, got {weight}")
        self.weight = weight

    def __call__(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor, grad_scale: float = 1.0) -> torch.Tensor:
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
        interpolates = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
        scores = critic(interpolates)
        # Differentiate the *mean* score: each sample's gradient then enters the fp16 graph as scale / N
        # rather than scale, which keeps it finite under the usual 2**16 loss scale; N / scale undoes both.
        outer = scores.float().mean() * grad_scale
        (grads,) = torch.autograd.grad(outer, interpolates, create_graph=True)
        grads = grads.flatten(1).float() * (real.shape[0] / grad_scale)
        return self.weight * ((grads.norm(2, dim=1) - 1.0) ** 2).mean()

    def __repr__(self) -> str:
        return f"GradientPenalty(weight={self.weight})"


class R1Penalty:
    """R1 (Mescheder et al. 2018): (gamma / 2) * E[||grad D(x)||_2^2] on real images only, pushing D's
    surface flat where the data is; the non-saturating loss with R1 is StyleGAN2's objective.

    Lazy regularization (Karras et al. 2020): with ``every=k`` the training loop applies the penalty on one
    D step in k, and the penalty is multiplied by k so its weight per D step is unchanged on average.
    ``grad_scale`` is the mixed-precision loss scale, undone as in ``GradientPenalty``.
    """

    name = "r1"

    def __init__(self, gamma: float = 10.0, every: int = 1) -> None:
        require(gamma >= 0, "R1 gamma", f"must be >= 0, got {gamma}")
        require(is_int_at_least(every, 1), "R1 every",
                f"must be an integer >= 1 (apply on every k-th D step), got {every!r}")
        self.gamma = gamma
        self.every = every

    def __call__(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor, grad_scale: float = 1.0) -> torch.Tensor:
        real = real.detach().requires_grad_(True)
        scores = critic(real)
        (grads,) = torch.autograd.grad(scores.sum() * grad_scale, real, create_graph=True)
        grads = grads.flatten(1).float() / grad_scale
        return self.every * 0.5 * self.gamma * grads.pow(2).sum(dim=1).mean()

    def __repr__(self) -> str:
        return f"R1Penalty(gamma={self.gamma}, every={self.every})"


def path_lengths(images: torch.Tensor, ws: torch.Tensor, noise: torch.Tensor, grad_scale: float = 1.0) -> torch.Tensor:
    """Per image, ``sqrt(mean over layers l of ||J_l^T y||^2)``: J_l the Jacobian of the image with respect to the
    w of layer l, y = ``noise`` (B x C x H x W). ``ws`` (B x num_ws x w_dim) must be in the graph of ``images``.
    One vector-Jacobian product through autograd for the whole batch (images do not depend on each other's w);
    the graph is kept so the penalty can be differentiated."""
    (grads,) = torch.autograd.grad((images * noise).sum() * grad_scale, ws, create_graph=True)
    return (grads.float() / grad_scale).square().sum(dim=2).mean(dim=1).sqrt()


class PathLengthPenalty(nn.Module):
    """StyleGAN2's path-length regularisation (Karras et al. 2020, sec. 3.2): a fixed-size step in w should change
    the image by a fixed amount, whatever the direction. On ``batch_size // batch_shrink`` fresh latents,
    ``weight * E[(||J_w^T y|| - a)^2]`` with y ~ N(0, I) / sqrt(H * W) and a = ``pl_mean``, the running mean of the
    lengths (``pl_mean <- lerp(pl_mean, mean length, decay)``; a buffer, so it is in the checkpoint and resumes).

    As in StyleGAN2 the lengths are those of W+ (one w per layer, style-mixed like G's training batches), averaged
    over layers, and the new mean is part of the graph. Lazy: on one G step in ``every``, multiplied by ``every``.
    ``grad_scale``: the mixed-precision loss scale, undone as in ``GradientPenalty``.
    """

    name = "pl"

    def __init__(self, weight: float = 2.0, every: int = 4, decay: float = 0.01, batch_shrink: int = 2) -> None:
        super().__init__()
        require(weight >= 0, "path length weight", f"must be >= 0, got {weight}")
        require(is_int_at_least(every, 1), "path length every",
                f"must be an integer >= 1 (apply on every k-th G step), got {every!r}")
        require(0 < decay <= 1, "path length decay", f"must be in (0, 1], got {decay}")
        require(is_int_at_least(batch_shrink, 1), "path length batch_shrink",
                f"must be an integer >= 1, got {batch_shrink!r}")
        self.weight = weight
        self.every = every
        self.decay = decay
        self.batch_shrink = batch_shrink
        self.register_buffer("pl_mean", torch.zeros(()))

    def check(self, generator: nn.Module) -> None:
        if not isinstance(generator, LayeredStyleGenerator):
            raise ConfigError(f"path-length regularisation differentiates the image with respect to w: "
                              f"{type(generator).__name__} has no w space (use model=stylegan_lite, or drop "
                              "model.g_regularizers.pl)")

    def forward(
        self, generator: LayeredStyleGenerator, batch_size: int, labels: torch.Tensor | None, grad_scale: float = 1.0
    ) -> torch.Tensor:
        n = max(1, batch_size // self.batch_shrink)
        z = torch.randn(n, generator.latent_dim, device=self.pl_mean.device)
        ws = generator.styles(z)
        images = generator.synthesis(ws, None if labels is None else labels[:n])
        noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
        lengths = path_lengths(images, ws, noise, grad_scale)
        pl_mean = self.pl_mean.lerp(lengths.mean(), self.decay)
        self.pl_mean.copy_(pl_mean.detach())
        return self.every * self.weight * (lengths - pl_mean).square().mean()

    def extra_repr(self) -> str:
        return f"weight={self.weight}, every={self.every}, decay={self.decay}, batch_shrink={self.batch_shrink}"
