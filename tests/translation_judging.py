"""How well a trained translator does on the digits' held-out images, measured against its task's floor: what the
slow learning tests assert and ``scripts/bench_translation.py`` reports.

Held-out means the data module's validation split (``DigitsDataModule``: 180 digits no training step saw). Digits are
read by the outside judges of ``judges.py``, fitted on that data module's train split, never by the framework's own
classifier; a digit counts as read right when the judge reads it confidently as its label, and the stricter judge
(the lower share) is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from judges import data_module_train_split, judges, to_digit_grid
from scipy.ndimage import gaussian_filter

from parti_exp.data import DigitsDataModule
from parti_exp.data.digit_styles import dilate
from parti_exp.metrics.psnr_ssim import psnr, ssim

# The seed of the held-out inputs' noise (denoising): one fixed draw, the same for model and baselines.
HELD_OUT_SEED = 1234
# Gaussian-filter widths tried for the denoising baseline; the best on the train split is used on the val split.
FILTER_SIGMAS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5)


def digits(split: str, img_size: int = 16) -> tuple[torch.Tensor, np.ndarray]:
    """A split of ``DigitsDataModule`` as (N, 1, S, S) in [-1, 1] and labels."""
    datamodule = DigitsDataModule(img_size=img_size)
    datamodule.setup()
    dataset = datamodule.val_set if split == "val" else datamodule.train_set
    return torch.from_numpy(dataset.images).float() / 127.5 - 1, np.asarray(dataset.labels)


@dataclass(frozen=True)
class Scores:
    """PSNR (dB), SSIM and the stricter judge's share of right readings of some outputs."""

    psnr: float
    ssim: float
    read_right: float
    by_judge: dict[str, float]

    def __str__(self) -> str:
        judged = ", ".join(f"{name} {share:.3f}" for name, share in self.by_judge.items())
        return f"PSNR {self.psnr:.2f} dB, SSIM {self.ssim:.3f}, read right {self.read_right:.3f} ({judged})"


def read_right(images: torch.Tensor, labels: np.ndarray) -> dict[str, float]:
    """Each judge's share of ``images`` read confidently as their ``labels``."""
    grid = to_digit_grid(images)
    shares = {}
    for judge in judges(data_module_train_split()):
        reading = judge.read(grid)
        shares[judge.name] = float(((reading.digits == labels) & reading.confident).mean())
    return shares


def scores(images: torch.Tensor, targets: torch.Tensor, labels: np.ndarray) -> Scores:
    shares = read_right(images, labels)
    return Scores(float(psnr(images, targets).mean()), float(ssim(images, targets).mean()), min(shares.values()),
                  shares)


def translated(module, inputs: torch.Tensor, direction: str = "a_to_b", batch: int = 256) -> torch.Tensor:
    return torch.cat([module.translate(inputs[i : i + batch], direction).cpu() for i in range(0, len(inputs), batch)])


def super_resolution(module) -> dict[str, Scores]:
    """The model, bicubic upsampling of its inputs and the 16 px truth, on the held-out digits."""
    targets, labels = digits("val", module.task.img_size)
    inputs, _ = module.task.pair(targets, None)
    return {
        "model": scores(translated(module, inputs), targets, labels),
        "bicubic": scores(module.task.baseline(inputs), targets, labels),
        "truth": scores(targets, targets, labels),
    }


def gaussian_filtered(images: torch.Tensor, sigma: float) -> torch.Tensor:
    pixels = (images.numpy() + 1) / 2
    return torch.from_numpy(gaussian_filter(pixels, (0, 0, sigma, sigma), mode="reflect") * 2 - 1).float()


def best_filter_sigma(task) -> float:
    """The Gaussian filter's width that denoises the train split best (PSNR), the filter's one free parameter."""
    clean, _ = digits("train", task.img_size)
    noisy, _ = task.pair(clean, torch.Generator().manual_seed(HELD_OUT_SEED + 1))
    return max(FILTER_SIGMAS, key=lambda sigma: float(psnr(gaussian_filtered(noisy, sigma), clean).mean()))


def denoising(module) -> dict[str, Scores | float]:
    """The model, the noisy input and the best Gaussian filter, on the held-out digits with one fixed noise draw."""
    task = module.task
    targets, labels = digits("val", task.img_size)
    inputs, _ = task.pair(targets, torch.Generator().manual_seed(HELD_OUT_SEED))
    sigma = best_filter_sigma(task)
    return {
        "model": scores(translated(module, inputs), targets, labels),
        "noisy": scores(inputs, targets, labels),
        "filter": scores(gaussian_filtered(inputs, sigma), targets, labels),
        "filter_sigma": sigma,
    }


def agreement(first: torch.Tensor, second: torch.Tensor) -> dict[str, float]:
    """Each judge's share of images whose two versions it reads as the same digit (its most probable reading)."""
    a, b = to_digit_grid(first), to_digit_grid(second)
    return {judge.name: float((judge.read(a).digits == judge.read(b).digits).mean())
            for judge in judges(data_module_train_split())}


@dataclass(frozen=True)
class CycleScores:
    psnr_model: float  # G_AB(a) against dilate(a)
    psnr_identity: float  # a against dilate(a)
    agreement_model: dict[str, float]  # reading of a vs of G_AB(a)
    agreement_truth: dict[str, float]  # reading of a vs of dilate(a)
    cycle_psnr_a: float  # G_BA(G_AB(a)) against a

    def __str__(self) -> str:
        return (f"PSNR G(a) vs dilate(a) {self.psnr_model:.2f} dB, a vs dilate(a) {self.psnr_identity:.2f} dB; "
                f"readings of a and G(a) agree {min(self.agreement_model.values()):.3f} (stricter; "
                f"{self.agreement_model}), a and dilate(a) {min(self.agreement_truth.values()):.3f}; "
                f"cycle PSNR {self.cycle_psnr_a:.2f} dB")


def digit_styles(module) -> CycleScores:
    """CycleGAN on ``data=digit_styles``: its A -> B mapping against the known one, on the held-out digits."""
    a, _ = digits("val", module.task.img_size)
    truth = torch.from_numpy(dilate(((a + 1) * 127.5).round().to(torch.uint8).numpy())).float() / 127.5 - 1
    fake_b = translated(module, a)
    return CycleScores(
        float(psnr(fake_b, truth).mean()),
        float(psnr(a, truth).mean()),
        agreement(a, fake_b),
        agreement(a, truth),
        float(psnr(translated(module, fake_b, "b_to_a"), a).mean()),
    )
