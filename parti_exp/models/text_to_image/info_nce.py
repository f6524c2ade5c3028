"""CLIP's training objective (Radford et al. 2021): symmetric InfoNCE over a batch of matching image-text pairs,
optionally with NegCLIP's hard negative captions (Yuksekgonul et al. 2023) on the image side."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symmetric_info_nce(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    logit_scale: torch.Tensor,
    negative_embeddings: torch.Tensor | None = None,
    has_negative: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of the image->text and text->image cross-entropies of ``logit_scale * cosine similarity``, where row
    ``i`` of both ``B x E`` (l2-normalised) embeddings is a matching pair and every other row of the batch a
    negative. ``logit_scale`` is the inverse temperature (``exp`` of the learned parameter).

    ``negative_embeddings`` (``B x E``): a false caption per image (``hard_negatives``), added to the captions each
    image is ranked against, as NegCLIP does; rows where ``has_negative`` (``B`` bool) is False are left out. The
    text->image direction is unchanged: a false caption has no image of its own."""
    if image_embeddings.shape != text_embeddings.shape or image_embeddings.ndim != 2:
        raise ValueError(f"expected two B x E embeddings of one shape, got {tuple(image_embeddings.shape)} and "
                         f"{tuple(text_embeddings.shape)}")
    logits = logit_scale * image_embeddings.float() @ text_embeddings.float().T  # (B images, B texts)
    targets = torch.arange(len(logits), device=logits.device)
    image_to_text = logits
    if negative_embeddings is not None:
        if negative_embeddings.shape != image_embeddings.shape or has_negative is None:
            raise ValueError(f"hard negatives need B x E embeddings like the images' and a B mask, got "
                             f"{tuple(negative_embeddings.shape)}")
        negatives = logit_scale * image_embeddings.float() @ negative_embeddings.float().T  # (B images, B negatives)
        negatives = negatives.masked_fill(~has_negative[None, :], float("-inf"))
        image_to_text = torch.cat([logits, negatives], dim=1)
    return (F.cross_entropy(image_to_text, targets) + F.cross_entropy(logits.T, targets)) / 2
