"""The default run (DCGAN on the digits) must learn: its samples move toward the data and cover the classes. Judged
by classifiers and a distance in the original 8x8 space that neither training nor the metrics use: an RBF SVM
(tests/digit_judge.py, as scripts/bench_default_run.py judges the full run), a logistic regression and the nearest
real digit."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from digit_judge import judge_digits
from hydra_compose import BeforeFit
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from parti_exp.train import train


def judge(module, digits, classifier, n: int = 500) -> tuple[float, int, float]:
    """(mean distance to the nearest real digit, number of classes seen, largest class share)."""
    torch.manual_seed(0)
    images = module.generate(torch.randn(n, module.latent_dim))
    # Back to the data's own 8x8, 0..16 scale: upsampled digits (16 or 32 px) average-pool to the originals.
    small = F.adaptive_avg_pool2d((images + 1) / 2, 8).flatten(1).numpy() * 16
    distance = torch.cdist(torch.from_numpy(small), torch.from_numpy(digits.data).float()).min(1).values.mean()
    classes = classifier.predict(small)
    return float(distance), len(set(classes.tolist())), np.bincount(classes, minlength=10).max() / n


@pytest.mark.slow
def test_the_default_run_learns_digits_an_outside_judge_reads(cfg_factory):
    """Half the default run (its config as `python -m parti_exp.train` composes it, 30 of its 60 epochs)."""
    digits = load_digits()
    classifier = LogisticRegression(max_iter=3000).fit(digits.data, digits.target)
    cfg = cfg_factory("trainer.max_epochs=30", "trainer.accelerator=cpu", "metrics=none", "~callbacks", "~logger",
                      fast=False)  # fmt: skip
    assert (cfg.data.img_size, cfg.model.generator.width, cfg.model.ema.half_life_images) == (16, 32, 10000)
    before = {}
    # As `python -m parti_exp.train` does: weights, latents and the data order all follow from the seed.
    record = BeforeFit(lambda untrained: before.update(judged=judge(untrained, digits, classifier),
                                                        svm=svm_verdict(untrained)))  # fmt: skip
    module = train(cfg, [record]).module
    distance_before, _, share_before = before["judged"]
    distance_after, n_classes, share_after = judge(module, digits, classifier)
    verdict = svm_verdict(module)

    assert share_before > 0.9  # an untrained G gives one blob, read as a single class
    assert before["svm"].class_shares.max() > 0.9  # the SVM too reads the blob as one digit
    assert distance_after < 0.7 * distance_before
    assert n_classes == 10 and share_after < 0.3, "samples collapsed to a few digits"
    assert verdict.confident_share > 0.75, verdict
    assert verdict.min_class_share > 0.02, verdict


def svm_verdict(module, n: int = 300):
    torch.manual_seed(1)
    return judge_digits(module.generate(torch.randn(n, module.latent_dim)))
