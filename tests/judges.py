"""Outside judges of generated digits: instruments that neither training nor the epoch metrics ever use.

Two readers of different kinds, fitted on a fixed 1,200-image part of scikit-learn's 8x8 digits and validated on
the other 597 (``tests/test_judges.py``: real digits, blends of two digits, blurs, noise):

- ``svm``: an RBF SVM whose class probabilities come from pairwise coupling of its one-against-one votes
  (libsvm's ``probability=True``). Margin-based: a blend of a 3 and an 8 sits between two classes and gets neither.
- ``knn``: the 3 nearest real digits vote, and a sample farther from every real digit than 95 % of real digits are
  from their own nearest neighbour gets no vote at all. Instance-based: noise and blurs are far from all digits.

A sample counts as a digit for a judge when that judge reads it confidently: SVM probability >= 0.7; two of the
three nearest real digits agreeing, the nearest within the radius. A result is
reported as the **stricter** judge's (the smaller confident share, the smaller smallest class), beside both.
Each sample is box-filtered down to the data's own 8x8 grid and 0..16 grey scale before it is read.

``spread`` measures variety, which a reader of single samples cannot: for each digit, the mean pairwise distance
between the samples read (confidently, by both judges) as that digit, over the same for held-out real digits of that
class. Real digits score about 1; a model that draws one digit over and over scores far below.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.svm import SVC

N_FIT = 1200  # the judges are fitted on these digits (a seeded permutation); the other 597 validate them
SPLIT_SEED = 0
KNN_RADIUS_QUANTILE = 0.95


@dataclass(frozen=True)
class Reading:
    digits: np.ndarray  # (N,) the most probable digit
    confident: np.ndarray  # (N,) bool: read as that digit with the judge's confidence


@dataclass(frozen=True)
class Judge:
    name: str
    probabilities: Callable[[np.ndarray], np.ndarray]  # (N, 64) on the 0..16 scale -> (N, 10)
    confident: float  # the probability from which a read counts

    def read(self, grid: np.ndarray) -> Reading:
        probabilities = self.probabilities(grid)
        return Reading(probabilities.argmax(1), probabilities.max(1) >= self.confident)


@cache
def split() -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``load_digits()``: (fitted on, held out)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(load_digits().target))
    return order[:N_FIT], order[N_FIT:]


def data_module_train_split(split_seed: int = 0, val_fraction: float = 0.1) -> tuple[int, ...]:
    """The ``load_digits()`` indices of ``DigitsDataModule``'s train split: fit the judges on these (``judges(fit)``)
    to read images made from (or edited from) that data module's val digits."""
    order = np.random.default_rng(split_seed).permutation(len(load_digits().target))
    n_val = max(1, round(val_fraction * len(order)))
    return tuple(int(index) for index in order[n_val:])


@cache
def svm_judge(fit: tuple[int, ...] | None = None) -> Judge:
    """Fitted on ``load_digits()`` indices ``fit`` (default: the judges' own 1,200)."""
    digits = load_digits()
    fit = np.asarray(fit if fit is not None else split()[0])
    with warnings.catch_warnings():
        # scikit-learn 1.9 deprecates probability=True in favour of CalibratedClassifierCV, whose one-vs-rest
        # sigmoids read 94 % of two-digit blends and 84 % of noise as confident digits; pairwise coupling reads 34 %
        # and 0 %. pyproject bounds scikit-learn below the release that removes it.
        warnings.simplefilter("ignore", FutureWarning)
        # gamma for the 0..16 scale of the 64 pixels (the scikit-learn digits example's value)
        svm = SVC(gamma=0.001, C=10.0, probability=True, random_state=0).fit(digits.data[fit], digits.target[fit])
    return Judge("svm", svm.predict_proba, confident=0.7)


@cache
def knn_judge(fit: tuple[int, ...] | None = None) -> Judge:
    """Fitted on ``load_digits()`` indices ``fit`` (default: the judges' own 1,200)."""
    digits = load_digits()
    fit = np.asarray(fit if fit is not None else split()[0])
    real = digits.data[fit]
    votes = KNeighborsClassifier(n_neighbors=3).fit(real, digits.target[fit])
    nearest = NearestNeighbors(n_neighbors=2).fit(real)
    # Each fitted digit's distance to its nearest other digit: the spread of the data at its own density.
    radius = float(np.quantile(nearest.kneighbors(real)[0][:, 1], KNN_RADIUS_QUANTILE))

    def probabilities(grid: np.ndarray) -> np.ndarray:
        p = votes.predict_proba(grid)
        far = nearest.kneighbors(grid, n_neighbors=1)[0][:, 0] > radius
        # no confidence far from every real digit, but keep the vote's argmax for the class shares
        p[far] *= 0.5
        return p

    # two of the three neighbours agree, and the nearest is close
    return Judge("knn", probabilities, confident=0.66)


def judges(fit: tuple[int, ...] | None = None) -> tuple[Judge, ...]:
    """Both judges, fitted on ``load_digits()`` indices ``fit``: pass the indices of a data module's train split
    when the images judged come from (or are edits of) its val split."""
    return svm_judge(fit), knn_judge(fit)


def to_digit_grid(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """(N, 1, H, W) in [-1, 1] -> (N, 64) on the 8x8, 0..16 scale of ``load_digits`` (box filter)."""
    images = torch.as_tensor(images)
    small = F.adaptive_avg_pool2d((images.float().clamp(-1, 1) + 1) / 2, 8)
    return small.flatten(1).cpu().numpy() * 16


def held_out_digits(img_size: int = 16) -> tuple[torch.Tensor, np.ndarray]:
    """The 597 digits no judge was fitted on, upsampled as the data module does: ((N, 1, S, S) in [-1, 1], labels)."""
    digits = load_digits()
    _, held = split()
    images = torch.from_numpy(digits.images[held]).float().unsqueeze(1) / 16
    if img_size != 8:
        images = F.interpolate(images, size=img_size, mode="bilinear", align_corners=False)
    # quantised like the data module's uint8 images
    images = (images.clamp(0, 1) * 255).round() / 127.5 - 1
    return images, digits.target[held]


@cache
def _real_spread() -> np.ndarray:
    """(10,) mean pairwise distance between held-out real digits of each class, in the 8x8 space."""
    images, labels = held_out_digits()
    grid = to_digit_grid(images)
    return np.array([_mean_pairwise(grid[labels == digit]) for digit in range(10)])


def _mean_pairwise(points: np.ndarray) -> float:
    if len(points) < 2:
        return float("nan")
    distances = torch.cdist(torch.from_numpy(points), torch.from_numpy(points))
    return float(distances.sum() / (len(points) * (len(points) - 1)))


@dataclass(frozen=True)
class JudgeVerdict:
    confident_share: float
    class_shares: np.ndarray  # (10,) share of samples read as each digit (argmax, confident or not)

    @property
    def min_class_share(self) -> float:
        return float(self.class_shares.min())


@dataclass(frozen=True)
class Verdict:
    by_judge: dict[str, JudgeVerdict]
    both_confident_share: float  # read confidently, as the same digit, by every judge
    spread: float  # mean over digits (with >= 2 such samples) of within-class spread / real digits' spread

    @property
    def confident_share(self) -> float:
        """The stricter judge's share."""
        return min(v.confident_share for v in self.by_judge.values())

    @property
    def min_class_share(self) -> float:
        """The stricter judge's smallest digit."""
        return min(v.min_class_share for v in self.by_judge.values())

    def __str__(self) -> str:
        judged = ", ".join(
            f"{name} {v.confident_share:.3f} (smallest class {v.min_class_share:.3f})"
            for name, v in self.by_judge.items()
        )
        return (
            f"confident {self.confident_share:.3f} (stricter judge; {judged}; both {self.both_confident_share:.3f}), "
            f"smallest class {self.min_class_share:.3f}, spread {self.spread:.2f}"
        )


def judge_digits(images: torch.Tensor | np.ndarray, fit: tuple[int, ...] | None = None) -> Verdict:
    """Read (N, 1, H, W) images in [-1, 1] with every judge (fitted on ``fit``, as ``judges``)."""
    grid = to_digit_grid(images)
    readings = {judge.name: judge.read(grid) for judge in judges(fit)}
    by_judge = {
        name: JudgeVerdict(float(r.confident.mean()), np.bincount(r.digits, minlength=10) / len(r.digits))
        for name, r in readings.items()
    }
    first, *others = readings.values()
    agreed = first.confident.copy()
    for reading in others:
        agreed &= reading.confident & (reading.digits == first.digits)
    ratios = [
        _mean_pairwise(grid[agreed & (first.digits == digit)]) / _real_spread()[digit] for digit in range(10)
    ]
    ratios = [ratio for ratio in ratios if not np.isnan(ratio)]
    return Verdict(by_judge, float(agreed.mean()), float(np.mean(ratios)) if ratios else 0.0)


# Negative controls: images a judge must not read as digits.


def blends(images: torch.Tensor, labels: np.ndarray, seed: int = 0) -> torch.Tensor:
    """50/50 pixel blends of each image with one of a different digit, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    partners = np.array([rng.choice(np.flatnonzero(labels != label)) for label in labels])
    return (images + images[partners]) / 2


def blurred(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``sigma`` pixels at the images' own size."""
    from scipy.ndimage import gaussian_filter

    pixels = (images.numpy() + 1) / 2
    out = np.stack([gaussian_filter(image, (0, sigma, sigma), mode="constant") for image in pixels])
    return torch.from_numpy(out * 2 - 1).float()


def uniform_noise(n: int, img_size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, img_size, img_size, generator=torch.Generator().manual_seed(seed)) * 2 - 1
