"""Adversarial losses, all on raw discriminator logits.

Working on logits (softplus forms instead of a Sigmoid followed by BCE) keeps the losses finite for
any logit and safe under autocast. Each loss is a small object with ``d_loss`` and ``g_loss``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class AdversarialLoss:
    """``d_loss(real_logits, fake_logits)`` is minimised by D, ``g_loss(fake_logits)`` by G."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MinimaxLoss(AdversarialLoss):
    """Goodfellow et al.'s original game: D maximises log D(x) + log(1 - D(G(z))), G minimises the latter.

    G's gradient vanishes while D confidently rejects fakes; kept for comparison with ``ns``.
    """

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        # log(1 - sigmoid(l)) = -softplus(l)
        return -F.softplus(fake_logits).mean()


class NonSaturatingLoss(MinimaxLoss):
    """Same D loss; G maximises log D(G(z)) instead, which keeps its gradient alive early on."""

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()


class WassersteinLoss(AdversarialLoss):
    """Critic estimates E[D(real)] - E[D(fake)]; needs a Lipschitz constraint (gradient penalty)."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean() - real_logits.mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()


class HingeLoss(AdversarialLoss):
    """Hinge loss for D (Lim & Ye 2017; SNGAN, BigGAN), linear for G."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()


class LeastSquaresLoss(AdversarialLoss):
    """LSGAN (Mao et al. 2017) with targets a=0 (fake), b=1 (real), c=1 (G's target)."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real_logits - 1.0) ** 2).mean() + 0.5 * (fake_logits**2).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((fake_logits - 1.0) ** 2).mean()
