"""CycleGAN's nets (Zhu et al. 2017) as two containers, so that the adversarial loop trains them as one G and one D:
the two translators (A -> B and B -> A) and the two domain discriminators. Each container is one module, one
optimizer, one DDP wrapper, one moving average."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class CycleOutputs(NamedTuple):
    fake_b: torch.Tensor  # G_AB(a)
    fake_a: torch.Tensor  # G_BA(b)
    cycled_a: torch.Tensor  # G_BA(G_AB(a))
    cycled_b: torch.Tensor  # G_AB(G_BA(b))
    same_b: torch.Tensor | None  # G_AB(b): the identity term's, None when it is off
    same_a: torch.Tensor | None  # G_BA(a)


class CycleGenerators(nn.Module):
    """``a_to_b`` and ``b_to_a``; ``forward(a, b)`` runs every pass a training step needs, in one call (so a DDP
    wrapper sees one forward per backward)."""

    def __init__(self, a_to_b: nn.Module, b_to_a: nn.Module) -> None:
        super().__init__()
        self.a_to_b = a_to_b
        self.b_to_a = b_to_a

    def forward(self, a: torch.Tensor, b: torch.Tensor, identity: bool = True) -> CycleOutputs:
        fake_b, fake_a = self.a_to_b(a), self.b_to_a(b)
        same = (self.a_to_b(b), self.b_to_a(a)) if identity else (None, None)
        return CycleOutputs(fake_b, fake_a, self.b_to_a(fake_b), self.a_to_b(fake_a), *same)


class DomainDiscriminators(nn.Module):
    """D_B and D_A. ``forward(images)`` takes domain B's batch followed by domain A's, of equal size (the order in
    which the CycleGAN module hands every batch to D), and returns D_B's logits for the first half and D_A's for the
    second, in the same order."""

    def __init__(self, domain_a: nn.Module, domain_b: nn.Module) -> None:
        super().__init__()
        self.domain_a = domain_a
        self.domain_b = domain_b

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        of_b, of_a = images.chunk(2)
        return torch.cat([self.domain_b(of_b), self.domain_a(of_a)])
