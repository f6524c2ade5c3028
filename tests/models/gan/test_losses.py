"""Each adversarial loss against values worked out by hand on fixed logits."""

import math

import pytest
import torch

from parti_exp.models.gan.losses import HingeLoss, LeastSquaresLoss, MinimaxLoss, NonSaturatingLoss, WassersteinLoss

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def log_sigmoid(x: float) -> float:
    return math.log(1.0 / (1.0 + math.exp(-x)))


def log_one_minus_sigmoid(x: float) -> float:
    return math.log(1.0 - 1.0 / (1.0 + math.exp(-x)))


def mean(values):
    return sum(values) / len(values)


D_BCE = -mean([log_sigmoid(r) for r in REAL.tolist()]) - mean([log_one_minus_sigmoid(f) for f in FAKE.tolist()])

CASES = [
    # loss, expected d_loss, expected g_loss
    (MinimaxLoss(), D_BCE, mean([log_one_minus_sigmoid(f) for f in FAKE.tolist()])),
    (NonSaturatingLoss(), D_BCE, -mean([log_sigmoid(f) for f in FAKE.tolist()])),
    (WassersteinLoss(), mean([0.5, -3.0]) - mean([2.0, -1.0]), -mean([0.5, -3.0])),
    # hinge: relu(1-2)=0, relu(1+1)=2 -> 1 ; relu(1+0.5)=1.5, relu(1-3)=0 -> 0.75
    (HingeLoss(), 1.0 + 0.75, 1.25),
    # lsgan: 0.5*mean((1)^2, (-2)^2)=1.25 ; 0.5*mean(0.25, 9)=2.3125 ; g: 0.5*mean(0.25, 16)=4.0625
    (LeastSquaresLoss(), 1.25 + 2.3125, 4.0625),
]


@pytest.mark.parametrize("loss,expected_d,expected_g", CASES, ids=[type(case[0]).__name__ for case in CASES])
def test_loss_values_match_hand_computation(loss, expected_d, expected_g):
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(expected_d, rel=1e-6)
    assert loss.g_loss(FAKE).item() == pytest.approx(expected_g, rel=1e-6)


@pytest.mark.parametrize("loss", [MinimaxLoss(), NonSaturatingLoss()], ids=["bce", "ns"])
def test_logit_losses_stay_finite_for_extreme_logits_in_bf16(loss):
    # A Sigmoid + BCE would give log(0) here; the softplus forms must not.
    real = torch.tensor([-200.0, 200.0], dtype=torch.bfloat16)
    fake = torch.tensor([300.0, -300.0], dtype=torch.bfloat16)
    assert torch.isfinite(loss.d_loss(real, fake))
    assert torch.isfinite(loss.g_loss(fake))


def test_non_saturating_gradient_survives_where_minimax_vanishes():
    # D confidently rejects a fake (logit -10): minimax G gradient ~ sigmoid(-10), NS gradient ~ 1.
    logit = torch.tensor([-10.0], requires_grad=True)
    (g_minimax,) = torch.autograd.grad(MinimaxLoss().g_loss(logit), logit)
    (g_ns,) = torch.autograd.grad(NonSaturatingLoss().g_loss(logit), logit)
    assert abs(g_minimax.item()) < 1e-4
    assert abs(g_ns.item()) > 0.99
