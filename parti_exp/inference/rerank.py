"""Reranking: draw several candidates per requested image and keep the one a scorer likes best.

Parti reranks with CoCa's image-text similarity; here a contrastive dual encoder trained on the same captions
(``model=contrastive``) plays that part for any data, and on labelled data the held-out classifier's probability
for the captioned class can too: each prefers the candidates that show what the caption says.
"""

from __future__ import annotations

from typing import Callable

import torch

from parti_exp.data.captions.labels import Captioner
from parti_exp.metrics.digit_classifier import class_probabilities
from parti_exp.models.text_to_image.contrastive import ContrastiveModule

Scorer = Callable[[torch.Tensor, str], torch.Tensor]


class ClassifierScorer:
    """Score of an image for a caption: the classifier's probability of the class the caption names."""

    def __init__(self, classifier: torch.nn.Module, captioner: Captioner) -> None:
        self.classifier = classifier
        self.captioner = captioner

    def __call__(self, images: torch.Tensor, caption: str) -> torch.Tensor:
        target = self.captioner.class_of(caption)
        if target is None:
            raise ValueError(f"cannot rerank for {caption!r}: it names no class the classifier knows")
        return class_probabilities(self.classifier, images)[:, target].cpu()


class ContrastiveScorer:
    """Score of an image for a caption: their cosine similarity in a contrastive scorer's space."""

    def __init__(self, model: ContrastiveModule) -> None:
        self.model = model

    def __call__(self, images: torch.Tensor, caption: str) -> torch.Tensor:
        return (self.model.embed_images(images) @ self.model.embed_captions([caption])[0]).cpu()


@torch.no_grad()
def sample_reranked(
    model,
    caption: str,
    n: int,
    n_candidates: int,
    scorer: Scorer | None,
    sampling=None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` images for ``caption``, each the best-scored of ``n_candidates`` samples; returns (images, scores)."""
    if n_candidates < 1:
        raise ValueError(f"n_candidates must be >= 1, got {n_candidates}")
    candidates = model.sample_images([caption] * (n * n_candidates), sampling, generator)
    if n_candidates == 1 or scorer is None:
        return candidates, None
    scores = scorer(candidates, caption).view(n, n_candidates)
    best = scores.argmax(dim=1)
    chosen = candidates.view(n, n_candidates, *candidates.shape[1:])[torch.arange(n), best.to(candidates.device)]
    return chosen, scores[torch.arange(n), best]
