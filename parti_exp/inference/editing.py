"""Text-guided editing (inpainting, outpainting) with a text-to-image model: sampling with the kept codes forced.

The image's codes outside the mask are *kept*, never drawn; the masked codes are drawn for the prompt with the
guidance of ordinary sampling, by whichever decoder the checkpoint has (``FillsMaskedTokens``):

- ``model=parti`` draws them in raster order, each conditioned on the prompt and on every code before it (kept or
  drawn), with the KV cache. It cannot see the kept codes *after* a masked one (below or right of it), so a
  candidate may contradict them.
- ``model=muse`` starts from the kept codes with ``[MASK]`` in the hole and fills it in its parallel steps: every
  drawn code sees all kept codes around the hole.

The decoded image then gets the tokenizer's reconstruction of the input pasted back outside the mask, so the kept
pixels are exactly the reconstruction: the decoder's convolutions would otherwise let new codes change kept pixels
near the mask's edge.

Reranking (``n_candidates`` > 1) draws several candidates per edit and keeps the one that ranks best by two
criteria:

- the scorer: how well the candidate shows the prompt (``rerank.py``: the held-out digit classifier or the
  contrastive scorer), higher is better;
- agreement: the mean squared error between the decoded candidate, before pasting, and the input over the kept
  pixels, lower is better: a candidate whose new codes blend with the kept ones changes them least.

``rerank="both"``: each candidate gets its rank (0 = best) among the k by each criterion and the one with the
smallest sum of the two ranks wins, ties going to the better scorer rank. Ranks rather than values, because the
two are on unrelated scales (a probability, a cosine, a squared error). ``"scorer"`` or ``"agreement"`` ranks by
one alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from parti_exp.inference.edit_mask import cells_touched
from parti_exp.inference.rerank import Scorer
from parti_exp.protocols import FillsMaskedTokens

RERANK_RULES = ("both", "scorer", "agreement")


@dataclass
class Edits:
    images: torch.Tensor  # n x C x H x W in [-1, 1]: the chosen edits, the reconstruction outside the mask
    reconstruction: torch.Tensor  # 1 x C x H x W: the tokenizer's reconstruction of the input
    keep: torch.Tensor  # N bool: the token positions kept (forced), raster order
    kept_error: torch.Tensor  # n: each chosen edit's mean squared error to the input over the kept pixels


def kept_error(images: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image, the mean squared error to ``reference`` over the pixels outside ``mask`` (``H x W``, True =
    regenerated), all channels; 0 when the mask covers everything."""
    kept = (~mask).to(images.device).expand_as(images[0]).float()
    squared = (images.float() - reference.float()).pow(2) * kept
    return squared.flatten(1).sum(1) / kept.sum().clamp_min(1)


def ranks(values: torch.Tensor) -> torch.Tensor:
    """Rank (0 = smallest) of each entry along the last dimension; ties in index order."""
    return values.argsort(dim=-1, stable=True).argsort(dim=-1)


def choose(scores: torch.Tensor | None, errors: torch.Tensor, rule: str) -> torch.Tensor:
    """Index of the winning candidate per row of ``errors`` (``n x k``) and ``scores`` (same, or None)."""
    if rule not in RERANK_RULES:
        raise ValueError(f"rerank must be one of {', '.join(RERANK_RULES)}, got {rule!r}")
    agreement_rank = ranks(errors)
    if rule == "agreement":
        return agreement_rank.argmin(dim=1)
    if scores is None:
        raise ValueError(f"rerank={rule} needs a scorer")
    scorer_rank = ranks(-scores)
    if rule == "scorer":
        return scorer_rank.argmin(dim=1)
    k = errors.shape[1]
    # Lexicographic: the rank sum first, the scorer's rank (< k) breaking ties.
    return ((scorer_rank + agreement_rank) * k + scorer_rank).argmin(dim=1)


@torch.no_grad()
def edit_image(
    module: FillsMaskedTokens,
    image: torch.Tensor,
    mask: torch.Tensor,
    prompt: str,
    n: int,
    n_candidates: int = 1,
    scorer: Scorer | None = None,
    rerank: str = "both",
    sampling: object = None,
    generator: torch.Generator | None = None,
) -> Edits:
    """``n`` edits of ``image`` (``1 x C x H x W`` in [-1, 1], the model's size) that redraw ``mask`` (``H x W``
    bool, True = regenerate) to show ``prompt``, each the best of ``n_candidates`` under ``rerank``."""
    if n < 1 or n_candidates < 1:
        raise ValueError(f"n and n_candidates must be >= 1, got {n} and {n_candidates}")
    image = image.to(module.device)
    codes = module.image_codes(image)  # 1 x N
    keep = ~cells_touched(mask, module.token_grid).flatten().to(module.device)
    reconstruction = module.decode_codes(codes)
    rows = n * n_candidates
    decoded = module.sample_images([prompt] * rows, sampling, generator, codes.expand(rows, -1),
                                   keep.expand(rows, -1))
    pixel_mask = mask.to(module.device)
    candidates = torch.where(pixel_mask, decoded, reconstruction)
    errors = kept_error(decoded, image, mask).cpu().view(n, n_candidates)
    if n_candidates == 1:
        best = torch.zeros(n, dtype=torch.long)
    else:
        scores = scorer(candidates, prompt).view(n, n_candidates) if rerank != "agreement" else None
        best = choose(scores, errors, rerank)
    picked = torch.arange(n) * n_candidates + best
    return Edits(candidates[picked.to(module.device)], reconstruction, keep.cpu(), errors.flatten()[picked].cpu())
