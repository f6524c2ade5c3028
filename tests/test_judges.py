"""The outside digit judges are instruments: each reads held-out real digits, and each rejects the negative
controls (blends of two different digits, heavy blur, uniform noise) that a judge must not pass. The thresholds are
the ones a result leaning on these judges needs; the figures they measured are in docs/benchmarks.md."""

import numpy as np
import pytest
from judges import (
    blends,
    blurred,
    held_out_digits,
    judge_digits,
    judges,
    to_digit_grid,
    uniform_noise,
)


@pytest.fixture(scope="module")
def held_out():
    return held_out_digits(16)


@pytest.mark.parametrize("judge", judges(), ids=lambda judge: judge.name)
def test_each_judge_reads_held_out_real_digits(judge, held_out):
    images, labels = held_out
    reading = judge.read(to_digit_grid(images))
    assert reading.confident.mean() >= 0.93
    assert (reading.digits == labels).mean() >= 0.95


@pytest.mark.parametrize("judge", judges(), ids=lambda judge: judge.name)
def test_each_judge_rejects_blends_blurs_and_noise(judge, held_out):
    images, labels = held_out
    assert judge.read(to_digit_grid(blends(images, labels))).confident.mean() <= 0.45
    assert judge.read(to_digit_grid(blurred(images, 1.5))).confident.mean() <= 0.70
    assert judge.read(to_digit_grid(uniform_noise(len(images)))).confident.mean() <= 0.20
    # and its confidence falls as the blur grows: the instrument responds to how much worse the images get
    shares = [judge.read(to_digit_grid(blurred(images, sigma))).confident.mean() for sigma in (0.5, 1.0, 1.5, 2.0)]
    assert shares == sorted(shares, reverse=True) and shares[0] - shares[-1] > 0.4


def test_the_verdict_is_the_stricter_judge_and_spread_sees_copies(held_out):
    images, labels = held_out
    real = judge_digits(images)
    assert real.confident_share == min(v.confident_share for v in real.by_judge.values())
    assert real.min_class_share > 0.08  # the held-out digits are balanced
    assert 0.85 < real.spread < 1.1
    # every class drawn as one digit, over and over: as confident as real digits, but with no variety
    first_of_each = np.array([np.flatnonzero(labels == digit)[0] for digit in range(10)])
    copies = judge_digits(images[np.repeat(first_of_each, 30)])
    assert copies.confident_share > 0.9 and copies.spread < 0.05
    mixed = judge_digits(blends(images, labels))
    assert mixed.confident_share < 0.45 and mixed.both_confident_share < mixed.confident_share
