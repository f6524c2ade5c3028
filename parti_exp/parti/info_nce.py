"""CLIP's training objective (Radford et al. 2021): symmetric InfoNCE over a batch of matching image-text pairs."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symmetric_info_nce(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor,
                       logit_scale: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Mean of the image->text and text->image cross-entropies of ``logit_scale * cosine similarity``, where row
    ``i`` of both ``B x E`` (l2-normalised) embeddings is a matching pair and every other row of the batch a
    negative. ``logit_scale`` is the inverse temperature (``exp`` of the learned parameter)."""
    if image_embeddings.shape != text_embeddings.shape or image_embeddings.ndim != 2:
        raise ValueError(f"expected two B x E embeddings of one shape, got {tuple(image_embeddings.shape)} and "
                         f"{tuple(text_embeddings.shape)}")  # fmt: skip
    logits = logit_scale * image_embeddings.float() @ text_embeddings.float().T  # (B images, B texts)
    targets = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
