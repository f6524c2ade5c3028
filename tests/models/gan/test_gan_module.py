"""The GANModule's training schedule, logging, clipping and checkpoint contents."""

import pytest
import torch
from lightning.pytorch import Callback, seed_everything

from parti_exp.builders import build_module
from parti_exp.models.gan.module import GANModule
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.train import train


def adam_steps(optimizer: torch.optim.Optimizer) -> int:
    """How many times Adam actually stepped, from its own per-parameter state."""
    steps = {int(state["step"]) for state in optimizer.state.values()}
    assert len(steps) == 1
    return steps.pop()


@pytest.mark.parametrize("model,n_critic,k", [("wgan_gp", 5, 12), ("dcgan", 1, 7), ("dcgan", 3, 9)])
def test_n_critic_schedule(cfg_factory, model, n_critic, k):
    cfg = cfg_factory(f"model={model}", f"model.n_critic={n_critic}", f"trainer.limit_train_batches={k}")
    run = train(cfg)
    trainer, module = run.trainer, run.module
    g_opt, d_opt = trainer.optimizers
    assert module.d_step == k
    assert module.g_step == k // n_critic
    assert adam_steps(d_opt) == k
    assert adam_steps(g_opt) == k // n_critic
    # Lightning's own counter mixes both optimizers: that is why the module keeps its own.
    assert trainer.global_step == k + k // n_critic


# fast_dev_run=N stops once Lightning's global_step (D + G steps) reaches N, checked between batches.
@pytest.mark.parametrize(
    "model,fast_dev_run,steps",
    [
        ("dcgan", "true", (1, 1)),
        ("wgan_gp", "5", (5, 1)),
        ("sngan", "5", (5, 1)),
        ("cgan_pd", "5", (5, 1)),
        ("stylegan_lite", "true", (1, 1)),
    ],
)
def test_fast_dev_run_on_digits_steps_both_nets_and_logs(cfg_factory, model, fast_dev_run, steps):
    # ~model_data: each model's paper settings (its n_critic), not its digits setting
    cfg = cfg_factory(f"model={model}", "~model_data", f"trainer.fast_dev_run={fast_dev_run}")
    seed_everything(cfg.seed)
    before = build_module(cfg)
    seed_everything(cfg.seed)  # the same initial weights in the trained module
    run = train(cfg)
    trainer, module = run.trainer, run.module
    assert (module.d_step, module.g_step) == steps
    for name in ("generator", "discriminator"):
        old = torch.cat([p.flatten() for p in getattr(before, name).parameters()])
        new = torch.cat([p.flatten() for p in getattr(module, name).parameters()])
        assert not torch.allclose(old, new), f"{name} did not change"
    metrics = trainer.callback_metrics
    for key in ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake", "val/d_real"):
        assert torch.isfinite(metrics[key]), key
    if model == "wgan_gp":
        assert metrics["train/gp"] > 0
        # d_loss = adversarial part + penalty, as logged
        assert metrics["train/d_loss"] == pytest.approx(float(metrics["train/d_adv"] + metrics["train/gp"]), rel=1e-5)


def test_bf16_mixed_precision_trains_on_cpu(cfg_factory):
    cfg = cfg_factory("model=wgan_gp", "precision=bf16-mixed", "trainer.fast_dev_run=5")
    run = train(cfg)
    trainer, module = run.trainer, run.module
    assert trainer.precision == "bf16-mixed"
    assert module.g_step == 1
    assert all(torch.isfinite(p).all() for p in module.parameters())
    assert all(p.dtype == torch.float32 for p in module.parameters())  # master weights stay fp32


def test_gradient_clipping_bounds_the_last_gradients(cfg_factory):
    clip = 0.01
    # No validation pass: it would clear the gradients under inspection.
    module = train(
        cfg_factory(f"model.grad_clip_val={clip}", "trainer.limit_train_batches=3", "trainer.limit_val_batches=0")
    ).module
    for net in (module.generator, module.discriminator):
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in net.parameters() if p.grad is not None]))
        assert norm <= clip * (1 + 1e-4)
    unclipped = train(cfg_factory("trainer.limit_train_batches=3", "trainer.limit_val_batches=0")).module
    norm = torch.linalg.vector_norm(
        torch.stack([p.grad.norm() for p in unclipped.discriminator.parameters() if p.grad is not None])
    )
    assert norm > clip  # otherwise the clipping assertion above proves nothing


def test_checkpoint_holds_counters_and_config_and_rebuilds_the_generator(cfg_factory, tmp_path):
    cfg = cfg_factory("model=wgan_gp", "trainer.limit_train_batches=10")
    module = train(cfg).module
    checkpoint = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert checkpoint["gan_steps"] == {"g_step": 2, "d_step": 10}
    rebuilt, stored_cfg = module_from_checkpoint(checkpoint)
    assert isinstance(rebuilt, GANModule) and stored_cfg.model.n_critic == 5
    assert (rebuilt.g_step, rebuilt.d_step) == (2, 10)
    z = torch.randn(4, module.latent_dim)
    assert torch.equal(rebuilt.generate(z), module.generate(z))


def test_training_writes_grids_curves_and_csv(cfg_factory, tmp_path):
    train(cfg_factory("trainer.max_epochs=2", "trainer.limit_train_batches=10", "trainer.log_every_n_steps=2"))
    run = tmp_path / "run"
    grids = sorted(p.name for p in (run / "samples").glob("*.png"))
    assert grids == ["epoch_0000.png", "epoch_0001.png"]
    assert (run / "curves.png").stat().st_size > 1000
    header = (run / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/d_loss", "train/g_loss", "train/d_real", "train/d_fake"} <= set(header)


@pytest.mark.parametrize(
    "override,message",
    [("model.n_critic=0", "n_critic must be an integer >= 1"), ("model.grad_clip_val=-1", "grad_clip_val")],
)
def test_bad_module_settings_fail_at_build(cfg_factory, override, message):
    with pytest.raises(Exception, match=message):
        build_module(cfg_factory(override))


def test_each_update_computes_only_its_own_nets_gradients_and_a_frozen_layer_stays_frozen(cfg_factory):
    backward_passes = {"generator": 0, "discriminator": 0}
    frozen_layer = {}

    class Watch(Callback):
        def setup(self, trainer, pl_module, stage):
            first = next(pl_module.discriminator.parameters())
            first.requires_grad_(False)  # a user's frozen layer
            frozen_layer.update(param=first, value=first.detach().clone())
            for name in backward_passes:
                # A leaf's hook runs once for each backward pass that computes its gradient.
                param = list(getattr(pl_module, name).parameters())[-1]
                param.register_hook(lambda grad, name=name: backward_passes.update({name: backward_passes[name] + 1}))

    cfg = cfg_factory("model=dcgan", "trainer.limit_train_batches=3", "trainer.limit_val_batches=0")
    module = train(cfg, [Watch()]).module
    # 3 batches, n_critic=1: 3 D updates and 3 G updates, each back-propagating into its own net only
    assert backward_passes == {"generator": 3, "discriminator": 3}
    first = frozen_layer["param"]
    assert not first.requires_grad and torch.equal(first, frozen_layer["value"]) and first.grad is None
    assert all(p.requires_grad for p in module.discriminator.parameters() if p is not first)
