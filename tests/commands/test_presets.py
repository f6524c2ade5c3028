"""The CIFAR-10 reproduction presets: each composes, builds nets with the parameter counts of the architecture it
cites, trains one G step on CIFAR-10 files in the official on-disk format, and names the metric protocol of the number
it cites (docs/reproduce.md)."""

import math

import pytest
import torch
from dataset_files import write_cifar10
from hydra.utils import instantiate

from parti_exp.builders import build_module
from parti_exp.metrics.image_quality import InceptionMetrics
from parti_exp.metrics.inception import random_weights_file
from parti_exp.train import train

# preset: (G parameters, D parameters, n_critic, (num_fake, real_split)). The counts are the reference architecture's:
# dcgan and cgan_pd as StudioGAN's CIFAR-10 DCGAN and SNGAN logs print them; wgan_gp and sngan computed layer by layer
# from torch-mimicry's wgan_gp_32.py / sngan_32.py (SNGAN's CIFAR ResNet, equal to StudioGAN's ResNet G of 4,276,739).
PRESETS = {
    "dcgan": (3_812_355, 2_931_009, 2, (10_000, "test")),
    "wgan_gp": (4_276_739, 1_053_825, 5, (50_000, "train")),
    "sngan": (4_276_739, 1_053_825, 5, (50_000, "train")),
    "cgan_pd": (4_304_387, 1_055_105, 5, (50_000, "train")),
    # Not StudioGAN's conditional StyleGAN2 (20,215,315 / 23,089,664): our StyleGAN-lite and ResNet D at width 512.
    "stylegan2": (19_947_539, 16_798_209, 1, (50_000, "train")),
}


def parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_has_the_cited_architecture_and_protocol(cfg_factory, tmp_path, preset):
    g_count, d_count, n_critic, (num_fake, split) = PRESETS[preset]
    cfg = cfg_factory(f"experiment=cifar10_{preset}", f"metrics.weights_path={random_weights_file(tmp_path / 'w.pth')}",
                      fast=False)
    module = build_module(cfg)
    assert (parameters(module.generator), parameters(module.discriminator)) == (g_count, d_count)
    assert module.n_critic == n_critic and cfg.data.batch_size == 64
    metrics = instantiate(cfg.metrics, _convert_="all")
    assert isinstance(metrics, InceptionMetrics)
    assert (metrics.num_fake, metrics.real_split, metrics.resize) == (num_fake, split, "legacy")
    # The step budget in G steps: Lightning's max_steps counts D and G steps together.
    assert cfg.trainer.max_steps / (n_critic + 1) == {"dcgan": 200_000, "stylegan2": 200_000}.get(preset, 100_000)


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_trains_one_step_on_cifar10_files(cfg_factory, tmp_path, preset):
    write_cifar10(tmp_path / "data")
    run = train(cfg_factory(
        f"experiment=cifar10_{preset}", f"paths.data_dir={tmp_path / 'data'}", "data.verify=false",
        # One D and one G step of the preset's nets (n_critic=1 for this alone: D steps cost the same each), without
        # the epoch-end sample grid, which at these widths costs more than the step.
        "data.batch_size=4", "model.n_critic=1", "metrics=none", "~callbacks.sample_grid", "trainer.accelerator=cpu",
        "trainer.cpu_threads=1", "trainer.max_epochs=1", "trainer.limit_train_batches=1", "trainer.limit_val_batches=0",
        "trainer.enable_model_summary=false", "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1",
        fast=False,
    ))
    assert (run.module.g_step, run.module.d_step) == (1, 1)
    assert math.isfinite(run.metrics["train/g_loss"]) and math.isfinite(run.metrics["train/d_loss"])
