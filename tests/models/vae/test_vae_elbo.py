"""The ELBO's pieces (parti_exp.models.vae.elbo, parti_exp.models.vae.pixel_likelihood) against hand computations and
Monte Carlo."""

import math

import pytest
import torch
from scipy.stats import norm

from parti_exp.errors import ConfigError
from parti_exp.models.vae.elbo import (
    active_units,
    bernoulli_log_prob,
    bits_per_dim,
    discretized_gaussian_log_prob,
    discretized_logistic_log_prob,
    free_bits_kl,
    gaussian_kl,
    importance_weighted_bound,
    kl_weight,
    log_normal,
)
from parti_exp.models.vae.pixel_likelihood import PixelLikelihood

LEVELS = torch.arange(256, dtype=torch.float64) / 127.5 - 1  # every 8-bit value on the [-1, 1] scale


def test_gaussian_kl_closed_form_matches_hand_values_and_monte_carlo():
    # KL(N(1, 1) || N(0, 1)) = 1/2; KL(N(0, e^-2) || N(0, 1)) = (e^-2 - 1 + 2) / 2.
    kl = gaussian_kl(torch.tensor([1.0, 0.0]), torch.tensor([0.0, -2.0]))
    assert kl.tolist() == pytest.approx([0.5, (math.exp(-2) + 1) / 2])

    mean, logvar = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([-1.0, 0.5, -3.0])
    rng = torch.Generator().manual_seed(0)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(400_000, 3, generator=rng, dtype=torch.float64)
    zero = torch.zeros(3)
    monte_carlo = (log_normal(z, mean, logvar) - log_normal(z, zero, zero)).mean(0)
    assert monte_carlo.tolist() == pytest.approx(gaussian_kl(mean, logvar).tolist(), abs=0.01)


def test_log_normal_is_the_gaussian_log_density():
    value = log_normal(torch.tensor(1.5), torch.tensor(0.5), torch.tensor(math.log(4.0)))
    assert float(value) == pytest.approx(norm(0.5, 2.0).logpdf(1.5))


def test_bernoulli_log_prob_by_hand():
    # p = sigmoid(logit): 1/2 and 3/4; targets 1 and 0 -> log(1/2) + log(1/4); a second image: log(1/2) + log(3/4).
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, math.log(3.0)]]).view(2, 1, 1, 2)
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(2, 1, 1, 2)
    expected = [math.log(0.5) + math.log(0.25), math.log(0.5) + math.log(0.75)]
    assert bernoulli_log_prob(logits, targets).tolist() == pytest.approx(expected)


def test_bernoulli_likelihood_reads_the_data_binarised_at_half_grey():
    likelihood = PixelLikelihood("bernoulli")
    # uint8 127 and 128 on the [-1, 1] scale: off and on.
    images = torch.tensor([127 / 127.5 - 1, 128 / 127.5 - 1]).view(1, 1, 1, 2)
    logits = torch.full_like(images, math.log(3.0))  # p(on) = 3/4
    assert float(likelihood.discrete_log_prob(logits, images)) == pytest.approx(math.log(0.25) + math.log(0.75))
    assert likelihood.mean(logits).flatten().tolist() == pytest.approx([0.5, 0.5])  # 2 p - 1
    assert bits_per_dim(torch.tensor([math.log(0.5) * 2]), 2).item() == pytest.approx(1.0)


@pytest.mark.parametrize("log_prob", [discretized_logistic_log_prob, discretized_gaussian_log_prob])
@pytest.mark.parametrize("mean, log_scale", [(0.1, -2.0), (-0.97, -5.0), (0.5, 1.0), (0.99, -8.0)])
def test_discretized_likelihoods_are_distributions_over_the_256_levels(log_prob, mean, log_scale):
    x = LEVELS.view(256, 1, 1, 1)
    log_p = log_prob(x, torch.full_like(x, mean), torch.full_like(x, log_scale))
    assert float(torch.logsumexp(log_p, 0).exp()) == pytest.approx(1.0, abs=1e-4)


def test_discretized_gaussian_by_hand():
    x, mean, scale = 10 / 127.5 - 1, -0.9, 0.05
    half = 1 / 255
    expected = math.log(norm.cdf((x + half - mean) / scale) - norm.cdf((x - half - mean) / scale))
    value = discretized_gaussian_log_prob(*(torch.tensor(v, dtype=torch.float64).view(1, 1, 1, 1)
                                            for v in (x, mean, math.log(scale))))
    assert float(value) == pytest.approx(expected, rel=1e-6)
    # The lowest level takes the whole left tail.
    edge = discretized_gaussian_log_prob(*(torch.tensor(v, dtype=torch.float64).view(1, 1, 1, 1)
                                           for v in (-1.0, mean, math.log(scale))))
    assert float(edge) == pytest.approx(math.log(norm.cdf((-1 + half - mean) / scale)), rel=1e-6)


def test_importance_weighted_bound_by_hand():
    log_weights = torch.log(torch.tensor([[1.0, 2.0], [3.0, 2.0]]))  # k = 2 samples of 2 images
    assert importance_weighted_bound(log_weights).tolist() == pytest.approx([math.log(2.0), math.log(2.0)])
    assert importance_weighted_bound(log_weights[:1]).tolist() == pytest.approx([0.0, math.log(2.0)])


def test_kl_warmup_schedule_and_free_bits_and_active_units_by_hand():
    assert [kl_weight(step, 2.0, 10) for step in (0, 5, 10, 50)] == [0.0, 1.0, 2.0, 2.0]
    assert kl_weight(0, 0.5, 0) == 0.5
    # Batch means 0.2 and 1.5 nats: the first counts as the 0.5 free nats, the second as itself.
    assert float(free_bits_kl(torch.tensor([[0.1, 2.0], [0.3, 1.0]]), 0.5)) == pytest.approx(2.0)
    # Posterior means of 4 images: dimension 0 varies (variance 1.25), dimension 1 barely (variance 1e-4).
    means = torch.tensor([[0.0, 0.01], [1.0, -0.01], [2.0, 0.01], [3.0, -0.01]])
    assert float(active_units(means.sum(0), means.pow(2).sum(0), 4)) == 1


def test_bad_likelihood_settings_are_refused():
    with pytest.raises(ConfigError, match="model.likelihood must be one of"):
        PixelLikelihood("poisson")
    with pytest.raises(ConfigError, match="gaussian_std"):
        PixelLikelihood("bernoulli", gaussian_std=0.1)
    assert PixelLikelihood("gaussian", gaussian_std=0.1).params_per_channel == 1
    assert PixelLikelihood("gaussian").params_per_channel == 2
