"""An outside judge of generated digits: an RBF SVM on scikit-learn's 8x8 digits that neither training nor the
metrics ever use. Each sample is box-filtered down to the data's own 8x8 grid and 0..16 grey scale, then read with
Platt-scaled probabilities. ``scripts/bench_default_run.py`` and the slow learning test judge with it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.svm import SVC

CONFIDENT = 0.7


@dataclass(frozen=True)
class Verdict:
    confident_share: float  # samples read as some digit with probability >= CONFIDENT
    class_shares: np.ndarray  # (10,) share of samples read as each digit (argmax, confident or not)

    @property
    def min_class_share(self) -> float:
        return float(self.class_shares.min())

    def __str__(self) -> str:
        shares = " ".join(f"{d}:{s:.3f}" for d, s in enumerate(self.class_shares))
        return f"confident {self.confident_share:.3f}, smallest class {self.min_class_share:.3f} ({shares})"


@cache
def svm_judge() -> CalibratedClassifierCV:
    digits = load_digits()
    # gamma for the 0..16 scale of the 64 pixels (the scikit-learn digits example's value); probabilities by Platt
    # scaling on held-out folds. Fits in about a second.
    svm = SVC(gamma=0.001, C=10.0)
    return CalibratedClassifierCV(svm, ensemble=False).fit(digits.data, digits.target)


def to_digit_grid(images: torch.Tensor) -> np.ndarray:
    """(N, 1, H, W) in [-1, 1] -> (N, 64) on the 8x8, 0..16 scale of ``load_digits`` (box filter)."""
    small = F.adaptive_avg_pool2d((images.float().clamp(-1, 1) + 1) / 2, 8)
    return small.flatten(1).cpu().numpy() * 16


def judge_digits(images: torch.Tensor) -> Verdict:
    probabilities = svm_judge().predict_proba(to_digit_grid(images))
    read = probabilities.argmax(1)
    return Verdict(
        confident_share=float((probabilities.max(1) >= CONFIDENT).mean()),
        class_shares=np.bincount(read, minlength=10) / len(read),
    )
