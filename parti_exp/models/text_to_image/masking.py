"""How many image tokens are masked, in training and at each step of parallel decoding: MaskGIT's cosine schedule.

The schedule ``masked_share(r) = cos(pi r / 2)`` maps progress ``r`` in [0, 1] to the share of tokens still masked:
all of them at ``r = 0``, none at ``r = 1``, few revealed early (when the model knows little) and many late.

- Training (``training_mask``): each image draws ``r ~ U(0, 1)`` and masks ``ceil(cos(pi r / 2) * N)`` of its ``N``
  tokens (at least one), chosen uniformly at random, so the model learns every stage of decoding, from an all-masked
  grid to one missing token.
- Sampling (``masked_after_steps``): with ``M`` tokens to fill in ``T`` steps, ``floor(M cos(pi t / 2T))`` stay masked
  after step ``t``, clamped as MaskGIT clamps it: every step but the last reveals at least one token while more than
  one is masked and keeps at least one masked; the last step reveals all.
"""

from __future__ import annotations

import math

import torch


def masked_share(progress: torch.Tensor) -> torch.Tensor:
    """The share of tokens masked at ``progress`` in [0, 1]: ``cos(pi progress / 2)``."""
    return torch.cos(progress * (math.pi / 2))


def mask_counts(progress: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """How many of ``num_tokens`` a training image masks at ``progress``: ``ceil(cos(pi r / 2) * num_tokens)``, at
    least 1."""
    return torch.ceil(masked_share(progress) * num_tokens).long().clamp(1, num_tokens)


def training_mask(batch: int, num_tokens: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``batch x num_tokens`` bool, True where a token is masked: per row ``mask_counts(r)`` of them (``r ~ U(0, 1)``),
    at positions drawn uniformly. Drawn on the CPU from ``generator`` (None: the global generator, which a resumed run
    restores)."""
    counts = mask_counts(torch.rand(batch, generator=generator), num_tokens)
    scores = torch.rand(batch, num_tokens, generator=generator)
    # The `count` positions with the smallest scores: a uniformly random subset of that size.
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return ranks < counts[:, None]


def masked_after_steps(to_fill: list[int], steps: int) -> torch.Tensor:
    """``steps x B`` long: how many of each row's ``to_fill`` tokens are still masked after each step (the last row
    all zeros). A row with nothing to fill stays at 0."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    rows, previous = [], list(to_fill)
    for step in range(1, steps + 1):
        share = math.cos(math.pi / 2 * step / steps)
        current = []
        for total, before in zip(to_fill, previous):
            if step == steps:
                current.append(0)
            else:
                # MaskGIT's clamp: reveal at least one while more than one is masked, keep at least one until the end.
                current.append(max(min(1, before), min(before - 1, math.floor(total * share))))
        rows.append(current)
        previous = current
    return torch.tensor(rows, dtype=torch.long)
