"""Discriminator regularizers: penalties added to the D loss, computed from the critic itself.

Each is called as ``regularizer(critic, real, fake, grad_scale)`` and has an ``every`` attribute k: the training
loop applies it on every k-th D step only, and it scales itself to make up for the others (lazy regularization).
"""

from __future__ import annotations

import torch

from parti_exp.protocols import Critic
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
