"""Text-image agreement in a contrastive encoder's space: CLIP score, R-precision, retrieval top-1.

Each function takes ``B x E`` image and text embeddings whose row ``i`` is a pair (an image and its caption, or a
sample and its prompt), and ``caption_ids``: equal ids for equal caption strings, so that an image is never asked to
tell its caption apart from another image's identical one (labelled data writes the same caption for a whole class).

These numbers live in the space of one scorer checkpoint: they compare runs measured with the same
``scorer_ckpt`` only, never across scorers, nor with published CLIP scores (another encoder, other data).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Rows of the similarity matrix held at once: R-precision over N images costs an N x N matrix otherwise.
CHUNK = 1024


def ids_by_caption(captions: list[str]) -> torch.Tensor:
    """One int64 id per caption, equal for equal strings."""
    ids: dict[str, int] = {}
    return torch.tensor([ids.setdefault(caption, len(ids)) for caption in captions], dtype=torch.int64)


def _check_pairs(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> None:
    if image_embeddings.shape != text_embeddings.shape or image_embeddings.ndim != 2 or not len(image_embeddings):
        raise ValueError(f"expected two non-empty B x E embeddings of one shape, got "
                         f"{tuple(image_embeddings.shape)} and {tuple(text_embeddings.shape)}")


def clip_score(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> float:
    """Mean over pairs of ``100 * max(cos(image, text), 0)`` (Hessel et al. 2021 without their 2.5 weight; the x100
    of the text-to-image literature). 100 for identical directions, 0 for orthogonal or opposed ones."""
    _check_pairs(image_embeddings, text_embeddings)
    cosine = F.cosine_similarity(image_embeddings.float(), text_embeddings.float(), dim=-1)
    return float((100 * cosine).clamp_min(0).mean())


def r_precision(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    caption_ids: torch.Tensor,
    distractors: int = 99,
    generator: torch.Generator | None = None,
) -> float:
    """AttnGAN's R-precision (Xu et al. 2018) with R = 1: the share of images whose own caption is more similar to
    them than each of ``distractors`` captions of other images, drawn at random (``generator``) among the captions
    that differ from the image's own. A tie counts as a miss.

    With fewer than ``distractors`` differing captions in the set, all of them are used. Chance is 1 / (1 +
    distractors) with distinct captions; on label-caption data the distractors repeat the other classes' captions,
    and chance is 1 / number of classes.
    """
    _check_pairs(image_embeddings, text_embeddings)
    if distractors < 1:
        raise ValueError(f"R-precision needs at least 1 distractor, got {distractors}")
    count = len(image_embeddings)
    ids = caption_ids.to(image_embeddings.device)
    if bool((ids == ids[0]).all()):
        raise ValueError("R-precision needs captions that differ: every image here has the same caption")
    images, texts = image_embeddings.float(), text_embeddings.float()
    own = (images * texts).sum(-1)
    hits = 0
    for start in range(0, count, CHUNK):
        rows = slice(start, min(start + CHUNK, count))
        same = ids[rows, None] == ids[None, :]  # (rows, count): captions that cannot be distractors
        # A random key per (image, caption); the `distractors` smallest keys among the differing captions win.
        keys = torch.rand(same.shape, generator=generator, device=generator.device if generator else "cpu")
        keys = keys.to(images.device).masked_fill(same, 2.0)
        chosen = keys.topk(min(distractors, count - 1), dim=1, largest=False)
        similarity = images[rows] @ texts.T
        rival = similarity.gather(1, chosen.indices).masked_fill(chosen.values > 1.0, float("-inf"))
        hits += int((own[rows] > rival.max(dim=1).values).sum())
    return hits / count


def retrieval_top1(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor, caption_ids: torch.Tensor) -> float:
    """Share of images whose most similar caption, among all the distinct captions of the set, is their own."""
    _check_pairs(image_embeddings, text_embeddings)
    ids = caption_ids.to(image_embeddings.device)
    distinct, first = _first_of_each(ids)
    texts = text_embeddings.float()[first]  # one embedding per distinct caption
    hits = 0
    for start in range(0, len(ids), CHUNK):
        best = (image_embeddings[start : start + CHUNK].float() @ texts.T).argmax(dim=1)
        hits += int((distinct[best] == ids[start : start + CHUNK]).sum())
    return hits / len(ids)


def _first_of_each(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct ids, and the index of the first row holding each."""
    distinct, inverse = torch.unique(ids, return_inverse=True)
    positions = torch.arange(len(ids), device=ids.device)
    first = torch.full((len(distinct),), len(ids), device=ids.device).scatter_reduce(0, inverse, positions, "amin")
    return distinct, first
