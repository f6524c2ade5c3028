"""The gradient penalty and R1 against independent computations on critics with known gradients."""

import pytest
import torch

from parti_exp.models.gan.regularizers import GradientPenalty, R1Penalty


def test_penalty_of_linear_critic_is_lambda_times_squared_norm_gap():
    # D(x) = <w, x>: its gradient is w at every point, so the penalty is lambda * (||w|| - 1)^2
    # whatever the interpolates are.
    torch.manual_seed(0)
    w = torch.tensor([3.0, 4.0, 0.0, 0.0]).view(1, 1, 2, 2)  # ||w|| = 5
    critic = lambda x: (x * w).flatten(1).sum(1)
    real, fake = torch.randn(8, 1, 2, 2), torch.randn(8, 1, 2, 2)
    penalty = GradientPenalty(weight=10.0)(critic, real, fake)
    assert penalty.item() == pytest.approx(10.0 * (5.0 - 1.0) ** 2)


def test_penalty_of_quadratic_critic_matches_per_sample_formula():
    # D(x) = 0.5 ||x||^2 has gradient x_hat: penalty = lambda * mean((||x_hat|| - 1)^2).
    torch.manual_seed(1)
    real, fake = torch.randn(6, 3, 4, 4), torch.randn(6, 3, 4, 4)
    critic = lambda x: 0.5 * x.flatten(1).pow(2).sum(1)
    gp = GradientPenalty(weight=2.5)
    torch.manual_seed(123)
    penalty = gp(critic, real, fake)
    torch.manual_seed(123)
    eps = torch.rand(6, 1, 1, 1)
    x_hat = eps * real + (1 - eps) * fake
    expected = 2.5 * ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5)


def test_loss_scale_is_undone():
    # Taking the gradient of a scaled output and dividing by the scale must give the unscaled penalty.
    w = torch.full((1, 1, 2, 2), 0.25)
    critic = lambda x: (x * w).flatten(1).sum(1)
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    plain = GradientPenalty()(critic, real, fake)
    scaled = GradientPenalty()(critic, real, fake, grad_scale=65536.0)
    assert scaled.item() == pytest.approx(plain.item(), rel=1e-6)


def test_penalty_is_differentiable_wrt_critic_parameters():
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1))
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    GradientPenalty()(lambda x: critic(x).flatten(), real, fake).backward()
    assert critic[1].weight.grad is not None and critic[1].weight.grad.abs().sum() > 0


def test_negative_weight_is_refused():
    with pytest.raises(ValueError, match="weight must be >= 0"):
        GradientPenalty(weight=-1.0)


def test_r1_of_linear_critic_is_half_gamma_times_squared_norm():
    # D(x) = <w, x> has gradient w everywhere: R1 = (gamma / 2) ||w||^2 = 0.5 * 10 * 25.
    w = torch.tensor([3.0, 4.0, 0.0, 0.0]).view(1, 1, 2, 2)
    critic = lambda x: (x * w).flatten(1).sum(1)
    real, fake = torch.randn(8, 1, 2, 2), torch.randn(8, 1, 2, 2)
    assert R1Penalty(gamma=10.0)(critic, real, fake).item() == pytest.approx(125.0)


def test_r1_is_the_mean_over_real_images_only():
    # D(x) = 0.5 ||x||^2 has gradient x: R1 = (gamma / 2) E||x||^2 over the reals; the fakes play no part.
    torch.manual_seed(2)
    real = torch.randn(6, 3, 4, 4)
    critic = lambda x: 0.5 * x.flatten(1).pow(2).sum(1)
    penalty = R1Penalty(gamma=0.2)(critic, real, torch.randn(6, 3, 4, 4))
    assert penalty.item() == pytest.approx((0.1 * real.flatten(1).pow(2).sum(1).mean()).item(), rel=1e-5)
    assert penalty.item() == pytest.approx(R1Penalty(gamma=0.2)(critic, real, torch.zeros(6, 3, 4, 4)).item())


def test_lazy_r1_scales_itself_by_its_interval_and_undoes_the_loss_scale():
    w = torch.full((1, 1, 2, 2), 0.5)
    critic = lambda x: (x * w).flatten(1).sum(1)
    real = torch.randn(4, 1, 2, 2)
    every_step = R1Penalty(gamma=1.0)(critic, real, real)
    assert R1Penalty(gamma=1.0, every=16)(critic, real, real).item() == pytest.approx(16 * every_step.item())
    assert R1Penalty(gamma=1.0)(critic, real, real, grad_scale=65536.0).item() == pytest.approx(every_step.item())


def test_r1_is_differentiable_wrt_critic_parameters():
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1))
    R1Penalty()(lambda x: critic(x).flatten(), torch.randn(4, 1, 2, 2), None).backward()
    assert critic[1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs,message", [({"gamma": -1.0}, "gamma must be >= 0"), ({"every": 0}, "every")])
def test_bad_r1_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        R1Penalty(**kwargs)
