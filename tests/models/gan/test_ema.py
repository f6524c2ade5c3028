"""The generator EMA: the update rule against its closed form, and its place in the GANModule."""

import pytest
import torch
from hydra_compose import BeforeFit
from lightning.pytorch import Callback
from torch import nn

from parti_exp.models.gan.ema import EMA
from parti_exp.runtime.checkpoints import read_checkpoint
from parti_exp.train import train


class Scalar(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(()))
        self.register_buffer("running", torch.zeros(()))


def test_average_after_n_steps_is_the_closed_form_weighted_sum():
    beta, thetas = 0.9, [3.0, -1.0, 4.0, 1.0, -5.0, 9.0, 2.0]
    net = Scalar()
    with torch.no_grad():
        net.theta.fill_(thetas[0])
    ema = EMA(beta=beta)
    average = ema.copy_of(net)
    for step, theta in enumerate(thetas[1:], start=1):
        with torch.no_grad():
            net.theta.fill_(theta)
        ema.update(average, net, images_per_step=64, images_seen=64 * step)
    # theta_0 weighted beta^n, each later theta_k weighted (1 - beta) beta^(n - k)
    n = len(thetas) - 1
    expected = beta**n * thetas[0] + sum((1 - beta) * beta ** (n - k) * thetas[k] for k in range(1, n + 1))
    assert average.theta.item() == pytest.approx(expected, rel=1e-6)


def test_half_life_in_images_halves_an_old_weight_whatever_the_batch_size():
    for batch in (16, 64):
        net, ema = Scalar(), EMA(half_life_images=1024)
        average = ema.copy_of(net)
        with torch.no_grad():
            net.theta.fill_(1.0)
        for step in range(1, 1024 // batch + 1):
            ema.update(average, net, images_per_step=batch, images_seen=batch * step)
        assert average.theta.item() == pytest.approx(0.5, rel=1e-5)


def test_rampup_caps_the_half_life_at_a_fraction_of_the_images_seen():
    ema = EMA(half_life_images=10_000, rampup=0.05)
    assert ema.beta_for(64, images_seen=6_400) == pytest.approx(0.5 ** (64 / 320))  # 0.05 * 6,400 images
    assert ema.beta_for(64, images_seen=10**7) == pytest.approx(0.5 ** (64 / 10_000))  # the cap is gone


def test_buffers_are_copied_and_the_copy_is_frozen_and_separate():
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    ema = EMA(beta=0.99)
    average = ema.copy_of(net)
    assert not any(p.requires_grad for p in average.parameters())
    net(torch.randn(8, 3))  # moves the running statistics
    ema.update(average, net, images_per_step=8, images_seen=8)
    torch.testing.assert_close(average[1].running_mean, net[1].running_mean)
    assert average[0].weight.data_ptr() != net[0].weight.data_ptr()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({}, "exactly one"),
        ({"beta": 0.9, "half_life_images": 10}, "exactly one"),
        ({"beta": 1.0}, r"\[0, 1\)"),
        ({"half_life_images": 0}, "> 0"),
        ({"beta": 0.9, "rampup": 0.05}, "comes with half_life_images"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EMA(**kwargs)


class RecordGenerator(Callback):
    """G's flattened weights after every training step (DCGAN: one G step per batch)."""

    def __init__(self) -> None:
        self.weights: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        self.weights.append(flat(pl_module.generator))


def flat(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in net.parameters()])


# A per-step average in place of the default run's half-life one (every key of model.ema named, as a user would)
EMA_BETA_HALF = ["model.ema.beta=0.5", "model.ema.half_life_images=null", "model.ema.rampup=null"]


def test_gan_module_samples_from_the_average_and_checkpoints_it(cfg_factory, tmp_path):
    cfg = cfg_factory(*EMA_BETA_HALF, "trainer.limit_train_batches=3")
    initial, record = {}, RecordGenerator()
    run = train(cfg, [BeforeFit(lambda untrained: initial.update(g=flat(untrained.generator))), record])
    module, trainer = run.module, run.trainer
    initial = initial["g"]

    g1, g2, g3 = record.weights
    average = flat(module.generator_ema)
    torch.testing.assert_close(average, initial / 8 + g1 / 8 + g2 / 4 + g3 / 2)
    assert not torch.allclose(average, g3)
    assert all(not p.requires_grad for p in module.generator_ema.parameters())
    g_optimizer = trainer.optimizers[0]
    assert {id(p) for group in g_optimizer.param_groups for p in group["params"]} == {
        id(p) for p in module.generator.parameters()
    }

    z = torch.randn(4, module.latent_dim)
    module.generator_ema.eval()
    torch.testing.assert_close(module.generate(z), module.generator_ema(z))
    state = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["state_dict"]
    names = [name for name, _ in module.generator_ema.named_parameters()]
    torch.testing.assert_close(torch.cat([state[f"generator_ema.{name}"].flatten() for name in names]), average)
