"""The GANModule's optional seams, through real fits: lazy regularizers, augmentation of D's inputs and
learning-rate schedules stepped per G / D step. (The generator EMA is in test_ema.py.)"""

import math

import pytest
from hydra_compose import BeforeFit
from lightning.pytorch import Callback

from parti_exp.models.gan.augment import DiffAugment
from parti_exp.train import train


class StepRecorder:
    """A regularizer that records the D step it was applied on (and adds nothing)."""

    def __init__(self, module, every: int) -> None:
        self.module, self.every, self.applied_at = module, every, []

    def __call__(self, critic, real, fake, grad_scale=1.0):
        self.applied_at.append(self.module.d_step)
        return critic(real).sum() * 0.0


def test_a_regularizer_with_every_k_runs_on_every_kth_d_step(cfg_factory):
    recorders = {}

    def install(module):
        recorders.update(lazy=StepRecorder(module, every=3), eager=StepRecorder(module, every=1))
        module.regularizers.update(recorders)

    cfg = cfg_factory("trainer.limit_train_batches=7", "trainer.limit_val_batches=0")
    module = train(cfg, [BeforeFit(install)]).module
    lazy, eager = recorders["lazy"], recorders["eager"]
    assert module.d_step == 7
    assert lazy.applied_at == [0, 3, 6]
    assert eager.applied_at == list(range(7))


def test_lazy_r1_from_the_loss_config_is_logged_when_applied(cfg_factory):
    run = train(cfg_factory("loss=ns_r1", "loss.regularizers.r1.every=2", "trainer.limit_train_batches=3",
                          "trainer.log_every_n_steps=1"))  # values are logged on the logging steps only
    assert run.module.regularizers["r1"].every == 2
    assert run.metrics["train/r1"] > 0


class Zeroing:
    """An 'augmentation' that blanks every image, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        return images * 0.0


def test_discriminator_sees_real_and_fake_through_the_augmentation_in_both_updates(cfg_factory):
    zeroing = Zeroing()
    cfg = cfg_factory("trainer.limit_train_batches=2", "trainer.limit_val_batches=0", "trainer.log_every_n_steps=1")
    run = train(cfg, [BeforeFit(lambda module: setattr(module, "augment", zeroing))])
    module = run.module
    assert zeroing.calls == 2 * 2 + 2  # real and fake per D step, fake per G step
    # D saw two blank batches: the same logits for real and fake
    assert run.metrics["train/d_real"] == run.metrics["train/d_fake"]
    # G's gradient went through the augmentation: blank images carry none, so G has no gradient at all
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in module.generator.parameters())


def test_diffaugment_policy_from_the_command_line(cfg_factory):
    # as README shows it: the comma-separated policy is quoted, or Hydra would read a sweep
    cfg = cfg_factory(
        'model.augment={_target_: parti_exp.models.gan.augment.DiffAugment, policy: "color,translation,cutout"}',
        "trainer.fast_dev_run=true",
    )
    run = train(cfg)
    assert isinstance(run.module.augment, DiffAugment) and run.module.augment.policy == "color,translation,cutout"
    assert run.module.g_step == 1 and math.isfinite(run.metrics["train/g_loss"])


class LearningRates(Callback):
    def __init__(self) -> None:
        self.g, self.d = [], []

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        g_opt, d_opt = trainer.optimizers
        self.g.append(g_opt.param_groups[0]["lr"])
        self.d.append(d_opt.param_groups[0]["lr"])


@pytest.mark.parametrize(
    "limits", [("trainer.max_epochs=2", "trainer.limit_train_batches=5"), ("trainer.max_steps=12",)]
)
def test_linear_decay_steps_each_net_to_zero_over_the_run(cfg_factory, limits):
    # sngan: n_critic=5 and LinearLR to zero for both nets with total_iters null (the run's length).
    lrs = LearningRates()
    # ~model_data: the paper's settings, not the digits setting's (n_critic 1, lr 1e-3)
    run = train(cfg_factory("model=sngan", "~model_data", *limits, "trainer.limit_val_batches=0"), [lrs])
    assert (run.module.d_step, run.module.g_step) == (10, 2)
    g_scheduler, d_scheduler = (config.scheduler for config in run.trainer.lr_scheduler_configs)
    assert (g_scheduler.total_iters, d_scheduler.total_iters) == (2, 10)
    # stepped after every D step, and after every G step (the 5th and 10th batches)
    assert lrs.d == pytest.approx([2e-4 * (1 - k / 10) for k in range(1, 11)])
    assert lrs.g == pytest.approx([2e-4] * 4 + [1e-4] * 5 + [0.0])


def test_an_explicit_schedule_length_is_kept(cfg_factory):
    run = train(cfg_factory("model=sngan", "~model_data", "model.d_scheduler.total_iters=100",
                            "trainer.limit_train_batches=5"))
    g_scheduler, d_scheduler = (config.scheduler for config in run.trainer.lr_scheduler_configs)
    assert (g_scheduler.total_iters, d_scheduler.total_iters) == (1, 100)


def test_a_schedule_over_an_endless_run_asks_for_a_length(cfg_factory):
    with pytest.raises(ValueError, match="finite run.*total_iters"):
        train(cfg_factory("model=sngan", "trainer.max_epochs=-1", "trainer.limit_train_batches=5"))
