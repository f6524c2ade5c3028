"""A short DCGAN run on the digits must learn: its samples move toward the data and cover the
classes. Judged by a logistic-regression digit classifier and nearest-neighbour distance in the
original 8x8 space, both independent of the GAN."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra_compose import BeforeFit
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from parti_exp.train import train


def judge(module, digits, classifier, n: int = 500) -> tuple[float, int, float]:
    """(mean distance to the nearest real digit, number of classes seen, largest class share)."""
    torch.manual_seed(0)
    images = module.generate(torch.randn(n, module.latent_dim))
    # Back to the data's own 8x8, 0..16 scale: 32 px upsampled digits average-pool to the originals.
    small = F.adaptive_avg_pool2d((images + 1) / 2, 8).flatten(1).numpy() * 16
    distance = torch.cdist(torch.from_numpy(small), torch.from_numpy(digits.data).float()).min(1).values.mean()
    classes = classifier.predict(small)
    return float(distance), len(set(classes.tolist())), np.bincount(classes, minlength=10).max() / n


@pytest.mark.slow
def test_short_dcgan_run_learns_varied_digits(cfg_factory):
    digits = load_digits()
    classifier = LogisticRegression(max_iter=3000).fit(digits.data, digits.target)
    cfg = cfg_factory("trainer.max_epochs=8", "model.generator.width=32", "model.discriminator.width=32",
                      "data.batch_size=64", "~callbacks", "~logger")  # fmt: skip
    before = {}
    # As `python -m parti_exp.train` does: weights, latents and the data order all follow from the seed.
    record = BeforeFit(lambda untrained: before.update(judged=judge(untrained, digits, classifier)))
    module = train(cfg, [record]).module
    distance_before, _, share_before = before["judged"]
    distance_after, n_classes, share_after = judge(module, digits, classifier)

    assert share_before > 0.9  # an untrained G gives one blob, read as a single class
    assert distance_after < 0.7 * distance_before
    assert n_classes >= 8, "samples collapsed to a few digits"
    assert share_after < 0.35, "one digit dominates the samples"
