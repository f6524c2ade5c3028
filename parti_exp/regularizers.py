"""Discriminator regularizers: penalties added to the D loss, computed from the critic itself."""

from __future__ import annotations

from typing import Callable

import torch

Critic = Callable[[torch.Tensor], torch.Tensor]


class GradientPenalty:
    """WGAN-GP (Gulrajani et al. 2017): weight * E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates
    x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1] per sample.

    ``grad_scale`` is the mixed-precision loss scale: the gradient is taken of the *scaled* critic output
    (so fp16 gradients do not underflow) and unscaled, as torch.amp's gradient-penalty recipe does.
    An overflow makes the penalty inf, which the scaler then sees in D's gradients and skips the step.
    """

    name = "gp"

    def __init__(self, weight: float = 10.0) -> None:
        if weight < 0:
            raise ValueError(f"gradient penalty weight must be >= 0, got {weight}")
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
