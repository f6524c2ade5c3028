"""ADA: each op differentiable and the identity at p = 0; the controller's arithmetic against a hand computation; p
rising when D memorises a tiny set and staying at 0 when D cannot tell real from fake; p logged and checkpointed
through real fits of every GAN of the zoo."""

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from parti_exp.errors import BadCheckpointError, UserError
from parti_exp.models.gan.ada import OPS, AdaptiveAugment, rotate90, with_probability
from parti_exp.models.gan.losses import NonSaturatingLoss
from parti_exp.runtime.checkpoints import read_checkpoint
from parti_exp.train import train


def images(n: int = 8, channels: int = 3, size: int = 16) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(n, channels, size, size) * 2 - 1


@pytest.mark.parametrize("op", sorted(OPS))
def test_each_op_is_differentiable_and_the_identity_at_p_0(op):
    x = images().requires_grad_(True)
    pipeline = AdaptiveAugment(ops=op, initial_p=1.0)
    out = pipeline(x)
    assert out.shape == x.shape and not torch.equal(out, x)
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(AdaptiveAugment(ops=op, initial_p=0.0)(x), x)


def test_each_image_is_transformed_with_probability_p():
    x = images(n=4000, channels=1, size=4)
    out = with_probability(lambda t: t + 10.0, x, torch.tensor(0.3))
    changed = (out != x).flatten(1).any(1)
    assert torch.equal(out[changed], x[changed] + 10.0) and torch.equal(out[~changed], x[~changed])
    assert abs(changed.float().mean().item() - 0.3) < 0.03  # 4000 draws: 0.03 is over 4 standard deviations


def test_rotate90_turns_each_image_by_a_multiple_of_90_degrees():
    x = images(n=32)
    out = rotate90(x)
    turns = [[k for k in (1, 2, 3) if torch.equal(o, i.rot90(k, dims=(1, 2)))] for i, o in zip(x, out)]
    assert all(len(k) == 1 for k in turns)
    assert len({k[0] for k in turns}) == 3


def test_p_moves_by_the_images_seen_over_speed_images_toward_the_sign_target():
    ada = AdaptiveAugment(target=0.6, interval=2, speed_images=100)
    sure = torch.tensor([3.0, 1.0, 2.0, -1.0, 5.0])  # signs 1, 1, 1, -1, 1: mean 0.6 ... plus the next batch
    logs = ada.observe(sure, d_step=0)
    assert float(logs["train/ada_p"]) == 0.0  # step 0 of an interval of 2: nothing adjusted yet
    logs = ada.observe(torch.ones(5), d_step=1)
    # r_t = (3 + 5) / 10 = 0.8 > 0.6: p rises by the 10 images seen / 100
    assert float(logs["train/ada_rt"]) == pytest.approx(0.8)
    assert float(logs["train/ada_p"]) == pytest.approx(0.1)
    ada.observe(-torch.ones(5, 1, 3, 3), d_step=2)  # a patch D's map: one sign per image
    ada.observe(torch.ones(5, 1, 3, 3), d_step=3)
    assert float(ada.rt) == 0.0 and float(ada.p) == pytest.approx(0.0)  # 0 < 0.6: back down by 10 / 100
    ada.observe(-torch.ones(5), d_step=4)
    ada.observe(-torch.ones(5), d_step=5)
    assert float(ada.p) == 0.0  # clamped at 0


def test_bad_ada_settings_are_refused():
    for kwargs in ({"ops": "xflip,blur"}, {"target": 1.5}, {"interval": 0}, {"speed_images": 0}, {"initial_p": 2}):
        with pytest.raises(UserError):
            AdaptiveAugment(**kwargs)
    with pytest.raises(UserError, match=r"^augment.pipeline.target must be in \(0, 1\), got 1.5$"):
        AdaptiveAugment(target=1.5)


def tiny_discriminator() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(16, 32, 3, 2, 1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 1),  # 8x8 digits
    )


def adapt(real_batches, fake_batches, steps: int = 200) -> float:
    """Train a small D with ADA on the given batches, as the adversarial loop does (augment, step, observe); p."""
    torch.manual_seed(0)
    discriminator = tiny_discriminator()
    ada = AdaptiveAugment(interval=4, speed_images=2000)
    opt = torch.optim.Adam(discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    loss = NonSaturatingLoss()
    for step in range(steps):
        real_logits = discriminator(ada(real_batches(step)))
        fake_logits = discriminator(ada(fake_batches(step)))
        opt.zero_grad()
        loss.d_loss(real_logits, fake_logits).backward()
        opt.step()
        ada.observe(real_logits.detach(), step)
    return float(ada.p)


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    data = torch.from_numpy(load_digits().images).float().unsqueeze(1)
    return (data / 8.0 - 1.0)[torch.randperm(len(data), generator=torch.Generator().manual_seed(0))]


def test_p_rises_when_d_memorises_a_tiny_set_and_stays_at_0_when_it_cannot(digits):
    tiny, rest = digits[:16], digits[16:]

    def draw(pool, step):
        return pool[torch.randint(len(pool), (16,), generator=torch.Generator().manual_seed(step))]

    # The "fakes" are other real digits: D can only tell the 16 reals apart by remembering them.
    memorised = adapt(lambda step: tiny, lambda step: draw(rest, step))
    # Real and fake batches from the same 1,781 digits: nothing to learn, r_t stays near 0 < 0.6.
    indistinguishable = adapt(lambda step: draw(rest, step), lambda step: draw(rest, step + 10_000))
    # p settles where augmentation keeps r_t at 0.6 (here about 0.15: eight ops, so ~70% of images are transformed)
    assert memorised > 0.1
    assert indistinguishable < 0.05


@pytest.mark.parametrize("model", ["dcgan", "wgan_gp", "sngan", "cgan_pd", "stylegan_lite"])
def test_every_gan_trains_with_ada_logs_p_and_checkpoints_it(cfg_factory, tmp_path, model):
    run = train(cfg_factory(f"model={model}", "augment=ada", "augment.pipeline.interval=1",
                            "augment.pipeline.speed_images=100", "augment.pipeline.initial_p=0.5",
                            "trainer.limit_train_batches=3", "trainer.limit_val_batches=0",
                            "trainer.log_every_n_steps=1"))
    ada = run.module.augment
    assert isinstance(ada, AdaptiveAugment)
    # 3 adjustments of 32 images / 100 each from 0.5: p has moved by a multiple of 0.32, within [0, 1]
    assert float(ada.p) != 0.5 and 0.0 <= float(ada.p) <= 1.0
    assert run.metrics["train/ada_p"] == pytest.approx(float(ada.p))
    assert run.metrics["train/ada_rt"] == pytest.approx(float(ada.rt))
    saved = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["state_dict"]
    assert torch.equal(saved["augment.p"], ada.p) and torch.equal(saved["augment.rt"], ada.rt)


def test_resuming_a_run_without_ada_with_ada_is_refused_by_name(cfg_factory, tmp_path):
    train(cfg_factory("trainer.limit_train_batches=1", "trainer.limit_val_batches=0"))
    with pytest.raises(BadCheckpointError, match=r"model.augment._target_: checkpoint None, this run "
                                                 r"'parti_exp.models.gan.ada.AdaptiveAugment'"):
        train(cfg_factory("augment=ada", f"ckpt_path={tmp_path / 'run'}", f"paths.output_dir={tmp_path / 'next'}"))
    assert not (tmp_path / "next" / "checkpoints").exists()
