"""Stage 1 of text-to-image (`model=vqgan`) as a user trains it on the digits: the image tokenizer in the adversarial
loop's seams, with its warm-up before the adversary."""

import pytest
import torch
from hydra_compose import TINY_VQGAN, compose_train
from PIL import Image

from parti_exp.builders import build_module
from parti_exp.train import train

# Tiny models: intra-op threads only add waiting (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def adam_steps(optimizer: torch.optim.Optimizer) -> int:
    return max((int(state["step"]) for state in optimizer.state.values()), default=0)


def test_vqgan_trains_in_the_gan_seams_with_a_warm_up_before_the_adversary(tmp_path):
    cfg = compose_train(tmp_path, *TINY_VQGAN, "trainer.limit_train_batches=5", "model.adversarial_start=2",
                        "trainer.log_every_n_steps=1")
    seed_before = build_module(cfg)
    run = train(cfg)
    trainer, module = run.trainer, run.module
    g_opt, d_opt = trainer.optimizers
    # 5 batches: G (the autoencoder) steps on each; D and the adversarial term only from G step 2 on.
    assert (module.g_step, module.d_step) == (5, 5)
    assert adam_steps(g_opt) == 5 and adam_steps(d_opt) == 3
    logged = trainer.callback_metrics
    for key in ("train/rec", "train/commit", "train/g_adv", "train/psnr", "train/perplexity", "val/psnr"):
        assert key in logged and torch.isfinite(logged[key]), key
    # Perplexity is at most the number of codes in use (equal only for a uniform histogram), and the
    # tokenizer uses more than one code from the start.
    used_codes = float(logged["train/codebook_usage"]) * 32
    perplexity = float(logged["train/perplexity"])
    assert perplexity > 1.5 and perplexity <= used_codes + 1e-4
    # The reconstruction grid: 2 rows (originals, reconstructions) per 8 images of the 32 held-out ones.
    grid = Image.open(tmp_path / "run" / "reconstructions" / "epoch_0000.png")
    assert grid.size == (8 * 18 + 2, 8 * 18 + 2)
    changed = [not torch.equal(a, b) for a, b in zip(seed_before.generator.parameters(), module.generator.parameters())]
    assert all(changed)


def test_vqgan_fast_dev_run_on_digits(tmp_path):
    run = train(compose_train(tmp_path, *TINY_VQGAN, "trainer.fast_dev_run=true"))
    trainer, module = run.trainer, run.module
    assert module.g_step == 1 and "train/rec" in trainer.callback_metrics
