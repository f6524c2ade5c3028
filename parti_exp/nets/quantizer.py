"""Vector quantiser with the ViT-VQGAN codebook tricks (Yu et al. 2021, "Vector-quantized Image Modeling with
Improved VQGAN").

A plain VQ-VAE codebook looked up with Euclidean distance in the encoder's full width tends to collapse: a
few codes win every lookup and the rest never move. Two changes keep most of the codebook in use:

- factorised codes: the encoder's ``dim``-channel vectors are projected down to a small ``code_dim`` (8 to
  32) for the lookup and the chosen code is projected back up, so the search happens in a space where the
  codes are dense;
- l2-normalised lookup: projected vectors and codebook rows both live on the unit sphere, so the nearest
  code is the one with the highest cosine similarity and no code can win by its norm alone.

The rest is the VQ-VAE recipe: a straight-through estimator carries the decoder's gradient past the
non-differentiable lookup, and the commitment loss pulls encoder outputs and codes towards each other.
Codes that fall out of use anyway can be re-initialised from recent encoder outputs (``reinit_dead_codes``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from parti_exp.runtime.validation import require

# Per-forward decay of the code-usage average: a code unused for ~100 training steps has lost two thirds
# of its recorded usage.
USAGE_DECAY = 0.99


@dataclass
class Quantized:
    """What one lookup returns: the decoder's input and the losses and statistics to log."""

    quantized: torch.Tensor  # B x dim x h x w; the codes' value, the encoder output's gradient
    indices: torch.Tensor  # B x h x w int64 code ids
    commit_loss: torch.Tensor  # scalar
    perplexity: torch.Tensor  # scalar: exp(entropy of the batch's code histogram); k for k codes used equally
    usage: torch.Tensor  # scalar: fraction of the codebook used in this batch


class FactorizedQuantizer(nn.Module):
    """Projects B x dim x h x w features to ``code_dim``, snaps each unit vector to its max-cosine code and
    projects the (unit) code back to ``dim``.

    ``commit_loss`` is ``beta * mse(z, sg(e)) + mse(sg(z), e)`` on the normalised low-dim vectors, the mean
    over vectors and components: the first term commits the encoder to its codes, the second moves the codes.

    ``code_usage`` (a buffer, so it is checkpointed) is an exponential moving average of how many vectors
    each code received per training forward; the first forward sets it directly so that a young average
    does not make every code look unused. ``reinit_dead_codes`` replaces codes whose average is below
    ``dead_code_threshold`` (0 turns it off).
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        code_dim: int = 8,
        beta: float = 0.25,
        dead_code_threshold: float = 0.0,
    ) -> None:
        super().__init__()
        require(dim >= 1, "dim", f"must be at least 1, got {dim}")
        require(codebook_size >= 2, "codebook_size", f"must be at least 2, got {codebook_size}")
        require(code_dim >= 1, "code_dim", f"must be at least 1, got {code_dim}")
        require(beta >= 0, "beta", f"must be >= 0, got {beta}")
        require(dead_code_threshold >= 0, "dead_code_threshold", f"must be >= 0, got {dead_code_threshold}")
        self.dim = dim
        self.codebook_size = codebook_size
        self.code_dim = code_dim
        self.beta = beta
        self.dead_code_threshold = dead_code_threshold
        self.project_in = nn.Linear(dim, code_dim)
        self.project_out = nn.Linear(code_dim, dim)
        # Gaussian rows are uniform on the sphere once normalised.
        self.codebook = nn.Parameter(torch.randn(codebook_size, code_dim))
        self.register_buffer("code_usage", torch.zeros(codebook_size))
        self.register_buffer("usage_updates", torch.zeros((), dtype=torch.long))
        # The last training batch's normalised low-dim vectors: where dead codes are re-seeded from.
        self._recent_vectors: torch.Tensor | None = None

    def forward(self, z: torch.Tensor) -> Quantized:
        b, _, h, w = z.shape
        # Half-precision cosines tie and round; the lookup and both projections are cheap, so all in fp32.
        with torch.autocast(z.device.type, enabled=False):
            z_n = F.normalize(self.project_in(z.float().permute(0, 2, 3, 1).reshape(-1, self.dim)), dim=1)
            codes = F.normalize(self.codebook.float(), dim=1)
            indices = (z_n @ codes.t()).argmax(dim=1)
            e = codes[indices]
            commit_loss = self.beta * F.mse_loss(z_n, e.detach()) + F.mse_loss(z_n.detach(), e)
            # Straight through: the value is exactly e (z_n - z_n.detach() is exactly zero), so decoding the
            # indices later reproduces this output bit for bit; the gradient goes to z_n unchanged.
            quantized = self.project_out(e.detach() + (z_n - z_n.detach()))
        counts = torch.bincount(indices, minlength=self.codebook_size).float()
        probs = counts / indices.numel()
        if self.training:
            self._track_usage(counts, z_n)
        return Quantized(
            quantized=quantized.view(b, h, w, self.dim).permute(0, 3, 1, 2).contiguous(),
            indices=indices.view(b, h, w),
            commit_loss=commit_loss,
            perplexity=torch.exp(-torch.special.xlogy(probs, probs).sum()),
            usage=(counts > 0).float().mean(),
        )

    def indices_to_features(self, indices: torch.Tensor) -> torch.Tensor:
        """B x h x w code ids -> the B x dim x h x w features ``forward`` outputs for those codes."""
        with torch.autocast(indices.device.type, enabled=False):
            features = self.project_out(F.normalize(self.codebook.float(), dim=1)[indices])
        return features.permute(0, 3, 1, 2).contiguous()

    @torch.no_grad()
    def _track_usage(self, counts: torch.Tensor, z_n: torch.Tensor) -> None:
        # torch.where rather than an `if` on the step count: no device-to-host sync per forward.
        averaged = self.code_usage * USAGE_DECAY + counts * (1 - USAGE_DECAY)
        self.code_usage.copy_(torch.where(self.usage_updates == 0, counts, averaged))
        self.usage_updates.add_(1)
        if self.dead_code_threshold > 0:
            self._recent_vectors = z_n.detach()

    @torch.no_grad()
    def reinit_dead_codes(self) -> int:
        """Re-seed every code whose usage average is below ``dead_code_threshold`` with a randomly chosen
        normalised low-dim vector from the last training batch; returns how many codes were replaced.

        A replaced code's usage average restarts at the codebook's mean (an average code's usage), which
        gives it time to attract vectors before it can count as dead again. Under torch.distributed the
        averages are first averaged over ranks and the replacement vectors come from rank 0, so every rank
        keeps the same codebook. Call it on every rank, after a training forward.
        """
        if self.dead_code_threshold <= 0 or self._recent_vectors is None:
            return 0
        distributed = dist.is_available() and dist.is_initialized()
        if distributed:
            dist.all_reduce(self.code_usage)
            self.code_usage.div_(dist.get_world_size())
        dead = torch.nonzero(self.code_usage < self.dead_code_threshold).squeeze(1)
        n_dead = dead.numel()
        if n_dead == 0:
            return 0
        vectors = self._recent_vectors
        if not distributed or dist.get_rank() == 0:
            if n_dead <= len(vectors):
                pick = torch.randperm(len(vectors), device=vectors.device)[:n_dead]
            else:
                pick = torch.randint(len(vectors), (n_dead,), device=vectors.device)
            replacement = vectors[pick].to(self.codebook.device)
        else:
            replacement = torch.empty(n_dead, self.code_dim, device=self.codebook.device, dtype=vectors.dtype)
        if distributed:
            dist.broadcast(replacement, src=0)
        self.code_usage[dead] = self.code_usage.mean()
        self.codebook[dead] = replacement.to(self.codebook.dtype)
        return n_dead
