"""Reads a digit back from pixels, or declines to: the instrument behind caption and scene accuracy.

A classifier's argmax names a digit for anything, a blend of a 3 and an 8 or a grey smudge included, and its softmax
is confident about most of them (the metrics' classifier gives p >= 0.7 to 88 % of two-digit blends). A read counts
here only when the classifier is confident **and** the image's features lie as close to some real training digit as
real digits lie to each other: the nearest-neighbour radius that precision/recall use, taken at a quantile of the
training digits' own nearest-neighbour distances. Validated on held-out digits and on blends, blurs, noise and faint
digits in ``tests/metrics/test_digit_reader.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from parti_exp.data.base import UInt8ImageDataset
from parti_exp.metrics.digit_classifier import DigitClassifier
from parti_exp.runtime.images import to_uint8
from parti_exp.runtime.torch_utils import tensor_of

UNREADABLE = -2  # read() for an image that shows no one digit clearly
MIN_PROBABILITY = 0.9
# 97 % of training digits have another training digit within the radius; at 0.99 blurs and blends pass
RADIUS_QUANTILE = 0.97


@dataclass
class DigitReader:
    classifier: DigitClassifier
    real_features: torch.Tensor  # (M, F) features of the classifier's training digits
    radius: float
    min_probability: float = MIN_PROBABILITY

    @classmethod
    def fitted(
        cls, classifier: DigitClassifier, train: UInt8ImageDataset, quantile: float = RADIUS_QUANTILE
    ) -> DigitReader:
        """The reader of ``classifier``, with the radius taken from ``train`` (the split it was trained on)."""
        device = next(classifier.parameters()).device
        with torch.no_grad():
            images = tensor_of(train.images)
            features = torch.cat([classifier(batch.to(device))[0] for batch in images.split(1024)])
            distances = torch.cdist(features, features)
            distances.fill_diagonal_(float("inf"))  # each digit's nearest *other* digit
        radius = float(distances.min(dim=1).values.quantile(quantile))
        return cls(classifier, features, radius)

    def to(self, device: torch.device) -> DigitReader:
        self.classifier.to(device)
        self.real_features = self.real_features.to(device)
        return self

    @torch.no_grad()
    def read(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> (N,) long on the CPU: the digit, or ``UNREADABLE``."""
        device = self.real_features.device
        # quantised like a saved PNG, as the classifier's training images are
        features, logits = self.classifier(to_uint8(images).to(device))
        probability, digit = logits.float().softmax(dim=-1).max(dim=-1)
        near = torch.cdist(features, self.real_features).min(dim=1).values <= self.radius
        clear = (probability >= self.min_probability) & near
        return torch.where(clear, digit, torch.full_like(digit, UNREADABLE)).cpu()
