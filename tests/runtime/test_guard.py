"""The non-finite guard: a NaN loss stops the run before the update, naming the step and the loss, and leaves the
last checkpoint as it was; with model.guard.skip_nonfinite=true the step is skipped and counted instead."""

import math

import pytest
import torch

from parti_exp.models.gan.losses import NonSaturatingLoss
from parti_exp.runtime.checkpoints import read_checkpoint
from parti_exp.runtime.guard import NonFiniteError, NonFiniteGuard
from parti_exp.train import train

RUN = ["trainer.limit_train_batches=6", "trainer.limit_val_batches=1", "callbacks.model_checkpoint.every_n_g_steps=1"]


def nan_generator_loss_at(monkeypatch, bad_g_step: int) -> None:
    """G's loss becomes NaN on its update number ``bad_g_step`` (0-based), as a diverging run's would."""
    original = NonSaturatingLoss.g_loss
    calls = {"n": 0}

    def g_loss(self, fake_logits):
        loss = original(self, fake_logits)
        calls["n"] += 1
        return loss * math.nan if calls["n"] == bad_g_step + 1 else loss

    monkeypatch.setattr(NonSaturatingLoss, "g_loss", g_loss)


def test_nan_loss_stops_with_step_and_loss_and_keeps_the_last_good_checkpoint(cfg_factory, tmp_path, monkeypatch):
    nan_generator_loss_at(monkeypatch, 3)
    with pytest.raises(NonFiniteError, match=r"non-finite g_loss=nan at G step 3: stopped before applying"):
        train(cfg_factory(*RUN))
    last = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert last["gan_steps"] == {"g_step": 3, "d_step": 3}, "the checkpoint of the last good step"
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values() if t.is_floating_point())


def test_skip_nonfinite_skips_and_counts_the_step_and_training_goes_on(cfg_factory, tmp_path, monkeypatch):
    nan_generator_loss_at(monkeypatch, 2)
    metrics = train(cfg_factory(*RUN, "model.guard.skip_nonfinite=true", "trainer.log_every_n_steps=1")).metrics
    assert metrics["train/skipped_steps"] == 1.0
    last = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert last["gan_steps"] == {"g_step": 6, "d_step": 6}
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values() if t.is_floating_point())
    # G's Adam stepped once less than G's step counter: the skipped update never reached the weights.
    g_state = last["optimizer_states"][0]["state"]
    assert {int(s["step"]) for s in g_state.values()} == {5}


def test_guard_checks_gradients_too():
    net = torch.nn.Linear(2, 1)
    net.weight.grad = torch.tensor([[math.inf, 0.0]])
    with pytest.raises(NonFiniteError, match=r"non-finite a gradient \(the loss was finite\) at D step 7"):
        NonFiniteGuard().allows_step("D", 7, {"d_loss": torch.tensor(0.5)}, net.parameters())
    assert NonFiniteGuard().allows_step("D", 7, {"d_loss": torch.tensor(0.5)}, [])


def test_guard_finds_a_nan_in_any_gradient_of_any_dtype_and_leaves_finite_ones_as_they_were():
    nets = [torch.nn.Linear(3, 2), torch.nn.Linear(2, 2).to(torch.bfloat16)]
    parameters = [p for net in nets for p in net.parameters()]
    for p in parameters:
        p.grad = torch.randn_like(p) * 1e30 if p.dtype == torch.float32 else torch.randn_like(p)
    before = [p.grad.clone() for p in parameters]
    assert NonFiniteGuard().allows_step("G", 0, {"g_loss": torch.tensor(0.5)}, parameters)
    assert all(torch.equal(p.grad, b) for p, b in zip(parameters, before)), "the check must not change a gradient"
    parameters[-1].grad[0] = math.nan  # the last tensor, in bfloat16
    with pytest.raises(NonFiniteError, match="a gradient"):
        NonFiniteGuard().allows_step("G", 0, {"g_loss": torch.tensor(0.5)}, parameters)
    with pytest.raises(NonFiniteError, match=r"g_loss=inf"):
        NonFiniteGuard().allows_step("G", 0, {"g_loss": torch.tensor(math.inf), "g_adv": torch.tensor(0.1)}, [])
