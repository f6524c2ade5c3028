"""A VAE run through the framework's machinery: its grids and checkpoint, then `sample` (prior samples, interpolation)
and `evaluate` (FID and bits per dimension) reading that checkpoint as data (weights only)."""

import json
import math

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra_compose import compose_sample
from hydra_compose import run_entry_point as run
from PIL import Image

from parti_exp import CONF_DIR
from parti_exp.errors import ConfigError
from parti_exp.evaluate import evaluate
from parti_exp.sample import sample
from parti_exp.train import train

TINY_VAE = [
    "model=vae", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
    "metrics=none", "model.net.width=8", "model.net.latent_dim=8", "model.iw_samples=4", "trainer.max_epochs=1",
    "trainer.limit_train_batches=3", "trainer.log_every_n_steps=1", "callbacks.sample_grid.num_samples=16",
    "callbacks.reconstruction_grid.num_images=8",
]


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    from hydra_compose import compose_train

    tmp_path = tmp_path_factory.mktemp("vae_run")
    result = train(compose_train(tmp_path, *TINY_VAE, fast=False))
    return result, tmp_path / "run"


def test_a_vae_run_writes_sample_and_reconstruction_grids_curves_and_checkpoints(vae_run):
    result, run_dir = vae_run
    assert [p.name for p in (run_dir / "samples").iterdir()] == ["epoch_0000.png"]
    # Rows of 8: originals over reconstructions, 8 images of 16 px -> 2 rows, 2 px of padding around each.
    grid = Image.open(run_dir / "reconstructions" / "epoch_0000.png")
    assert grid.mode == "L" and grid.size == (8 * 18 + 2, 2 * 18 + 2)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and (run_dir / "curves.png").is_file()
    # Tensors and plain data only: sample and evaluate read it with weights_only=True.
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(run_dir / "checkpoints" / "last.ckpt")) == []
    header = (run_dir / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/elbo", "train/kl", "val/bpd", "val/bpd_iw", "val/active_units"} <= set(header)
    assert result.trainer.global_step == 3


def test_sample_command_writes_prior_samples_of_a_vae_checkpoint(vae_run, tmp_path):
    _, run_dir = vae_run
    out_dir = tmp_path / "samples"
    result = run("parti_exp.sample", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "n=6", f"out_dir={out_dir}",
                 f"paths.root_dir={tmp_path}")
    assert sorted(p.name for p in out_dir.iterdir()) == [f"{i:06d}.png" for i in range(6)] + ["grid.png",
                                                                                               "manifest.json"]
    assert Image.open(out_dir / "000005.png").size == (16, 16)  # the digits config's size
    assert "wrote 6 images" in result.stdout


def test_sample_interpolates_a_vae_and_refuses_the_gan_only_tools(vae_run, tmp_path):
    _, run_dir = vae_run
    ckpt = f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"
    paths = sample(compose_sample(tmp_path, ckpt, "mode=interpolate", "seeds=[1,2,3]", "steps=4"), tmp_path / "i")
    assert len(paths) == 7  # 4 frames from 1 to 2, then 3 more to 3 (the shared end drawn once)
    assert (tmp_path / "i" / "interpolation.gif").is_file() and (tmp_path / "i" / "strip.png").is_file()
    # The first frame is seed 1's sample: what n=1 seed=1 draws.
    single = sample(compose_sample(tmp_path, ckpt, "n=1", "seed=1"), tmp_path / "s")
    assert Image.open(paths[0]).tobytes() == Image.open(single[0]).tobytes()
    with pytest.raises(ConfigError, match="truncation"):
        sample(compose_sample(tmp_path, ckpt, "truncation=0.7"), tmp_path / "t")
    with pytest.raises(ConfigError, match="unconditional"):
        sample(compose_sample(tmp_path, ckpt, "mode=classes"), tmp_path / "c")


@pytest.mark.slow  # trains the digit classifier of metrics=classifier
def test_evaluate_reports_bits_per_dimension_next_to_fid(vae_run, tmp_path):
    result, run_dir = vae_run
    overrides = ["metrics=classifier", f"metrics.cache_dir={tmp_path / 'cache'}", "metrics.num_fake=100",
                 "metrics.batch_size=100", "metrics.kid_subset_size=50", "device=cpu"]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name="evaluate", overrides=[f"paths.root_dir={tmp_path}",
                                                         f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                                                         *overrides])
    values = evaluate(cfg, tmp_path / "eval", overrides=overrides)
    assert math.isfinite(values["fid_clf"]) and 0 <= values["coverage_clf"] <= 1
    # The same bound on the same val images with the same weights as the run's last validation (other draws).
    assert values["bpd"] == pytest.approx(result.metrics["val/bpd"], rel=0.02)
    assert values["bpd_iw"] == pytest.approx(result.metrics["val/bpd_iw"], rel=0.02)
    assert values["bpd_images"] == "digits val split, 180 images" and "binarised" in values["bpd_meaning"]
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == values
