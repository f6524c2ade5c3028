"""Checkpoints written before classes moved still rebuild, sample and serve as tokenizers; a checkpoint's stored
config reads with moved `_target_`s mapped and the model's recorded extras merged in.
(the fixtures: tests/checkpoint_helpers.py)."""


import numpy as np
import pytest
import torch
from checkpoint_helpers import OLD_PARTI, OLD_STYLEGAN, OLD_TOKENIZER, OLD_VAE
from hydra_compose import compose_sample, compose_train
from PIL import Image

from parti_exp.builders import build_module
from parti_exp.models.text_to_image.module import TextToImageModule
from parti_exp.models.vqgan import VQGANModule
from parti_exp.nets.vqgan import VQGANAutoencoder
from parti_exp.runtime.checkpoints import (
    CONFIG_KEY,
    MODEL_EXTRAS_KEY,
    check_resumable,
    load_net,
    module_from_checkpoint,
    read_checkpoint,
    stored_config,
)
from parti_exp.runtime.instantiate import instantiate
from parti_exp.sample import sample


def test_an_old_tokenizer_checkpoint_rebuilds_under_the_moved_class():
    checkpoint = read_checkpoint(OLD_TOKENIZER)
    assert checkpoint[CONFIG_KEY]["model"]["_target_"] == "parti_exp.parti.vqgan_module.VQGANModule"
    module, cfg = module_from_checkpoint(checkpoint)
    assert isinstance(module, VQGANModule) and cfg.model._target_ == "parti_exp.models.vqgan.VQGANModule"
    assert torch.equal(module.generator.quantizer.codebook, checkpoint["state_dict"]["generator.quantizer.codebook"])
    images = torch.rand(2, 1, 16, 16) * 2 - 1
    assert module.reconstruct(images).shape == images.shape


def test_load_net_builds_the_stored_net_with_its_weights():
    net, net_cfg = load_net(OLD_TOKENIZER, "generator")
    assert isinstance(net, VQGANAutoencoder) and net_cfg["_target_"] == "parti_exp.nets.vqgan.VQGANAutoencoder"
    stored = read_checkpoint(OLD_TOKENIZER)["state_dict"]
    for name, tensor in net.state_dict().items():
        assert torch.equal(tensor, stored[f"generator.{name}"]), name
    with pytest.raises(ValueError, match="holds no net model.nowhere"):
        load_net(OLD_TOKENIZER, "nowhere")


def test_an_old_tokenizer_checkpoint_is_resumable_with_todays_config(tmp_path):
    cfg = compose_train(tmp_path, "experiment=tokenizer_digits")
    check_resumable(str(OLD_TOKENIZER), cfg)
    with pytest.raises(ValueError, match="model._target_"):
        check_resumable(str(OLD_TOKENIZER), compose_train(tmp_path))


def test_an_old_tokenizer_checkpoint_serves_stage_two(tmp_path):
    cfg = compose_train(tmp_path, "experiment=parti_digits", f"model.tokenizer_ckpt={OLD_TOKENIZER}",
                        "model.transformer.dim=16", fast=False)
    module = build_module(cfg)
    assert isinstance(module, TextToImageModule) and module.image_tokenizer.token_grid == (4, 4)


def test_an_old_text_to_image_checkpoint_samples_on_its_own(tmp_path, monkeypatch):
    def no_tokenizer_file(*args):
        raise AssertionError("the text-to-image checkpoint must not read its tokenizer's own checkpoint")

    monkeypatch.setattr("parti_exp.models.text_to_image.token_model.load_net", no_tokenizer_file)
    module, cfg = module_from_checkpoint(read_checkpoint(OLD_PARTI))
    assert isinstance(module, TextToImageModule) and cfg.model.image_tokenizer.startswith("_target_: ")
    paths = sample(compose_sample(tmp_path, f"ckpt_path={OLD_PARTI}", "prompts=[a handwritten seven]", "n=2"),
                   tmp_path / "out")
    assert len(paths) == 2 and Image.open(paths[0]).size == (16, 16)


def test_the_model_extras_are_merged_into_the_stored_model_config():
    checkpoint = {CONFIG_KEY: {"model": {"_target_": "parti_exp.parti.vqgan_module.VQGANModule", "a": 1}},
                  MODEL_EXTRAS_KEY: {"image_tokenizer": "text"}}
    cfg = stored_config(checkpoint)
    assert cfg.model == {"_target_": "parti_exp.models.vqgan.VQGANModule", "a": 1, "image_tokenizer": "text"}
    # the checkpoint itself is not changed by reading it
    assert "image_tokenizer" not in checkpoint[CONFIG_KEY]["model"]


@pytest.mark.parametrize(
    "ckpt,options",
    [(OLD_STYLEGAN, ["truncation=0.7"]), (OLD_VAE, [])],
    ids=["stylegan_lite", "vae"],
)
def test_checkpoints_of_the_flat_package_sample_what_they_sampled_then(tmp_path, ckpt, options):
    # They store parti_exp.gan.GANModule, parti_exp.vae.VAEModule, parti_exp.ema.EMA, parti_exp.guard.NonFiniteGuard,
    # parti_exp.metrics.callback.ClassifierMetrics, parti_exp.callbacks.gan_checkpoint.GANCheckpoint, ...
    stored = read_checkpoint(ckpt)[CONFIG_KEY]
    assert stored["model"]["_target_"] in ("parti_exp.gan.GANModule", "parti_exp.vae.VAEModule")
    cfg = stored_config(read_checkpoint(ckpt))
    assert cfg.model._target_.startswith("parti_exp.models.")
    assert cfg.callbacks.model_checkpoint._target_ == "parti_exp.callbacks.step_checkpoint.StepCheckpoint"
    assert type(instantiate(cfg.metrics)).__name__ == "ClassifierMetrics"
    sample(compose_sample(tmp_path, f"ckpt_path={ckpt}", "n=8", "device=cpu", *options), tmp_path / "out")
    then = np.asarray(Image.open(ckpt.with_name(f"{ckpt.stem}_grid.png")), dtype=np.int16)
    now = np.asarray(Image.open(tmp_path / "out" / "grid.png"), dtype=np.int16)
    # Within a grey level: another CPU may round the last bit of a float differently.
    assert now.shape == then.shape and np.abs(now - then).max() <= 1
