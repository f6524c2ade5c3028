"""Mixed precision with a gradient penalty. torch's CPU autocast and GradScaler stand in for CUDA's:
Lightning itself maps `16-mixed` to bf16 on a CPU, so these tests hand it the fp16 plugin directly."""

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch import seed_everything
from lightning.pytorch.plugins import MixedPrecision
from omegaconf import open_dict

from parti_exp.builders import build_datamodule, build_module

ONE_D_STEP = [
    "model=wgan_gp", "trainer.limit_train_batches=1", "trainer.limit_val_batches=0", "trainer.log_every_n_steps=1"
]


def fit_one_step(cfg, plugin=None):
    seed_everything(cfg.seed)
    datamodule, module = build_datamodule(cfg), build_module(cfg)
    initial = {k: v.detach().clone() for k, v in module.discriminator.named_parameters()}
    with open_dict(cfg):
        del cfg.trainer.cpu_threads  # ours, not a Trainer argument (build_trainer takes it out)
        if plugin is not None:
            del cfg.trainer.precision
    trainer = instantiate(cfg.trainer, callbacks=[], logger=False, plugins=[plugin] if plugin else None)
    trainer.fit(module, datamodule=datamodule)
    return trainer, module, initial


def test_fp16_penalty_is_unscaled_and_the_update_matches_fp32(cfg_factory):
    fp32, module32, initial = fit_one_step(cfg_factory(*ONE_D_STEP))
    # 2**8 leaves this small critic's fp16 gradients finite, so the step is taken (no back-off).
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    fp16, module16, _ = fit_one_step(cfg_factory(*ONE_D_STEP), MixedPrecision("16-mixed", "cpu", scaler=scaler))
    assert scaler.get_scale() == 2.0**8
    gp32, gp16 = fp32.callback_metrics["train/gp"].item(), fp16.callback_metrics["train/gp"].item()
    # Same seed, batch, latents and interpolation weights: only fp16 rounding separates the two. Without
    # unscaling, the penalty would be about (2**8 * ||grad||)^2, far outside a few percent.
    assert gp16 == pytest.approx(gp32, rel=0.05)
    # And the penalty's gradient reached D's parameters unscaled: both runs moved D the same way.
    update32 = torch.cat([(p.detach() - initial[n]).flatten() for n, p in module32.discriminator.named_parameters()])
    update16 = torch.cat([(p.detach() - initial[n]).flatten() for n, p in module16.discriminator.named_parameters()])
    assert torch.nn.functional.cosine_similarity(update32, update16, dim=0) > 0.95


def test_fp16_overflow_skips_the_step_and_backs_off_the_scale(cfg_factory):
    # A scale this large overflows fp16 gradients (and the penalty's): the scaler must skip D's update.
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**60)
    _, module, initial = fit_one_step(cfg_factory(*ONE_D_STEP), MixedPrecision("16-mixed", "cpu", scaler=scaler))
    for name, value in module.discriminator.named_parameters():
        assert torch.equal(value.detach(), initial[name]), f"{name} changed despite an inf gradient"
    assert scaler.get_scale() == 2.0**59


# stylegan_lite: path length differentiates through G twice, R1 through D
@pytest.mark.parametrize("model,g_compiled,d_compiled",
                         [("dcgan", True, True), ("wgan_gp", True, False), ("stylegan_lite", False, False)])
def test_compile_flag_compiles_the_nets_the_graph_allows(cfg_factory, model, g_compiled, d_compiled):
    module = build_module(cfg_factory(f"model={model}", "compile=true"))
    assert (module.generator._compiled_call_impl is not None) == g_compiled
    assert (module.discriminator._compiled_call_impl is not None) == d_compiled
    # in-place compilation: checkpoints keep the bare nets' keys
    assert all("_orig_mod" not in key for key in module.state_dict())


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_native_bfloat16_warns_with_the_fix(tmp_path, monkeypatch, caplog, native):
    import logging

    from hydra_compose import compose_train

    from parti_exp.runtime import config_checks

    monkeypatch.setattr(config_checks, "cpu_has_native_bf16", lambda: native)
    with caplog.at_level(logging.WARNING, logger="parti_exp.runtime.config_checks"):
        config_checks.check_train_config(compose_train(tmp_path, "precision=bf16-mixed", "trainer.accelerator=cpu"))
        config_checks.check_train_config(compose_train(tmp_path, "precision=32-true", "trainer.accelerator=cpu"))
    warned = [r.getMessage() for r in caplog.records if "without native bfloat16" in r.getMessage()]
    if native:
        assert warned == []
    else:
        assert len(warned) == 1  # the bf16 run only
        assert "precision=bf16-mixed on a CPU without native bfloat16" in warned[0]
        assert "Use precision=32-true here" in warned[0]


def test_the_native_bfloat16_probe_answers_a_bool():
    from parti_exp.runtime.config_checks import cpu_has_native_bf16

    assert isinstance(cpu_has_native_bf16(), bool)
