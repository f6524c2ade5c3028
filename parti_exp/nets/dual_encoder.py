"""A CLIP-style dual encoder (Radford et al. 2021): an image tower and a text tower projected into one space.

Both embeddings are l2-normalised, so their dot product is a cosine similarity; the contrastive loss multiplies it by
a learned inverse temperature, ``logit_scale.exp()``, kept at most ``max_logit_scale`` (CLIP: 100) so that the
logits cannot grow until training becomes unstable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from parti_exp.nets.transformer import TextEncoder
from parti_exp.runtime.validation import is_int_at_least, require

POOLS = ("end", "mean")


class PooledTextEncoder(TextEncoder):
    """Caption ``(ids, mask)`` -> ``B x dim``: the text encoder's states at the last real token (``pool: end``,
    CLIP's choice: the tokenizer ends every caption with ``<end>``, which attends to all of it) or their mean over
    the mask (``pool: mean``)."""

    def __init__(self, *args, pool: str = "end", **kwargs) -> None:
        require(pool in POOLS, "model.text_encoder.pool", f"must be one of {', '.join(POOLS)}, got {pool!r}")
        super().__init__(*args, **kwargs)
        self.pool = pool

    def forward(self, text_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        states = self.encode_text(text_ids, text_mask)  # (B, L, dim)
        if self.pool == "mean":
            weights = text_mask.to(states.dtype)[:, :, None]
            return (states * weights).sum(1) / weights.sum(1)
        # The tokenizer's masks are a prefix of True: the last real token is at position count - 1.
        last = text_mask.sum(1) - 1
        return states[torch.arange(len(states), device=states.device), last]


class DualEncoder(nn.Module):
    def __init__(
        self,
        image_encoder: nn.Module,
        text_encoder: nn.Module,
        embed_dim: int = 128,
        temperature: float = 0.07,
        max_logit_scale: float = 100.0,
    ) -> None:
        """``image_encoder``: images -> ``B x image_encoder.dim``; ``text_encoder``: (ids, mask) -> ``B x
        text_encoder.dim``. ``temperature``: the initial one (CLIP: 0.07), learned from there."""
        super().__init__()
        require(is_int_at_least(embed_dim, 1), "model.embed_dim", f"must be a positive integer, got {embed_dim!r}")
        require(max_logit_scale >= 1.0, "model.max_logit_scale", f"must be >= 1, got {max_logit_scale}")
        require(1.0 / max_logit_scale <= temperature <= 1.0, "model.temperature",
                f"must be in [1 / max_logit_scale, 1] = [{1.0 / max_logit_scale:g}, 1], got {temperature}")
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.image_proj = nn.Linear(image_encoder.dim, embed_dim, bias=False)
        self.text_proj = nn.Linear(text_encoder.dim, embed_dim, bias=False)
        # Learned in log space, as CLIP: the scale stays positive and its steps are relative.
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.max_log_scale = math.log(max_logit_scale)

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> ``B x embed_dim``, unit length."""
        return F.normalize(self.image_proj(self.image_encoder(images)), dim=-1)

    def embed_text(self, text_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """Token ids and mask -> ``B x embed_dim``, unit length."""
        return F.normalize(self.text_proj(self.text_encoder(text_ids, text_mask)), dim=-1)

    @torch.no_grad()
    def clamp_logit_scale_(self) -> None:
        """Keep the learned scale in [1, max_logit_scale]; called after each optimizer step, as CLIP does."""
        self.logit_scale.clamp_(0.0, self.max_log_scale)
