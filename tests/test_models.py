"""The ResNet-era models (sngan, cgan_pd, stylegan_lite) train on the digits through the unchanged loop,
and cgan_pd samples the classes asked for."""

import pytest
import torch
from hydra_compose import compose_sample
from PIL import Image

from parti_exp.builders import build_callbacks, build_datamodule, build_module, build_trainer
from parti_exp.nets.cgan_pd import ConditionalResNetGenerator
from parti_exp.sample import sample


def fit(cfg):
    datamodule, module = build_datamodule(cfg), build_module(cfg)
    trainer = build_trainer(cfg, build_callbacks(cfg), [])
    trainer.fit(module, datamodule=datamodule)
    return trainer, module


# fast_dev_run=N stops once D + G steps reach N (Lightning counts both), checked between batches.
@pytest.mark.parametrize(
    "model,fast_dev_run,steps", [("sngan", 5, (5, 1)), ("cgan_pd", 5, (5, 1)), ("stylegan_lite", "true", (1, 1))]
)
def test_fast_dev_run_on_digits_steps_both_nets(cfg_factory, tmp_path, model, fast_dev_run, steps):
    cfg = cfg_factory(f"model={model}", f"trainer.fast_dev_run={fast_dev_run}")
    before = build_module(cfg)
    trainer, module = fit(cfg)
    assert (module.d_step, module.g_step) == steps
    for name in ("generator", "discriminator"):
        old = torch.cat([p.flatten() for p in getattr(before, name).parameters()])
        new = torch.cat([p.flatten() for p in getattr(module, name).parameters()])
        assert not torch.allclose(old, new), f"{name} did not change"
    for key in ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake"):
        assert torch.isfinite(trainer.callback_metrics[key]), key
    assert (tmp_path / "run" / "samples" / "epoch_0000.png").is_file()
    if model == "stylegan_lite":
        assert trainer.callback_metrics["train/r1"] > 0  # lazy R1 runs on the first D step
        assert module.generator_ema is not None


def test_conditional_sampling_uses_the_requested_classes(cfg_factory, tmp_path, monkeypatch):
    fit(cfg_factory("model=cgan_pd", "trainer.limit_train_batches=2", "trainer.limit_val_batches=0"))
    seen = []
    forward = ConditionalResNetGenerator.forward

    def recording(self, z, labels=None):
        seen.append(labels.clone())
        return forward(self, z, labels)

    monkeypatch.setattr(ConditionalResNetGenerator, "forward", recording)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    paths = sample(
        compose_sample(tmp_path, f"ckpt_path={ckpt}", "n=7", "batch_size=4", "classes=[2,7,9]"), tmp_path / "s"
    )
    assert torch.cat(seen).tolist() == [2, 7, 9, 2, 7, 9, 2]
    assert len(paths) == 7
    image = Image.open(paths[0])
    assert image.size == (32, 32) and image.mode == "L"

    with pytest.raises(ValueError, match="out of range for 10 classes"):
        sample(compose_sample(tmp_path, f"ckpt_path={ckpt}", "classes=[10]"), tmp_path / "bad")
