"""A short run of the digits preset (experiment=muse_digits, fewer epochs, over a small stage-1 tokenizer trained
here) must learn to draw the captioned digit, judged by the outside judges of tests/judges.py, which neither training
nor the callbacks use: the stricter of the SVM and the kNN judge must confidently read the prompted digit in most
guided samples of "a handwritten zero" ... "a handwritten nine", and in almost none of an untrained model's.

The bounds sit below what two seeds measured (``MEASURED``), so that a real regression fails."""

import dataclasses

import numpy as np
import pytest
import torch
from hydra_compose import BeforeFit, compose_train
from judges import judges, to_digit_grid

from parti_exp.data.captions.labels import DigitCaptioner
from parti_exp.train import train

pytestmark = pytest.mark.slow

# A stage-1 tokenizer good enough for the judges (they read 89 % / 93 % of its reconstructions of held-out digits
# right), in about 10 s: reconstruction alone, narrow nets.
TOKENIZER = ["experiment=tokenizer_digits", "trainer.max_epochs=5", "model.generator.width=16",
             "model.discriminator.width=8", "model.adversarial_start=100000", "model.generator.codebook_size=64",
             "callbacks.reconstruction_grid=null", "trainer.enable_progress_bar=false"]
RUN = ["experiment=muse_digits", "trainer.max_epochs=8", "metrics=none", "callbacks.caption_accuracy=null",
       "callbacks.prompt_grid=null", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
PER_CLASS = 20
# Stricter judge's share of guided samples read as the prompted digit, seeds 42 and 1, with these runs (unguided 0.500
# and 0.165, untrained 0.025). Eight epochs sit on the steep part of the curve (the full preset reads 0.354 with the
# callback's reader at epoch 10 and 0.978 at epoch 20), so the seeds differ widely; the bound is below the lower.
MEASURED = {42: 0.725, 1: 0.245}
BOUND = 0.15


def caption_reads(module, guidance_scale: float) -> float:
    """The stricter judge's share of samples (``PER_CLASS`` per class prompt) it reads confidently as the prompted
    digit."""
    captioner = DigitCaptioner()
    prompts = captioner.prompts_for_classes()
    wanted = np.repeat([captioner.class_of(prompt) for prompt in prompts], PER_CLASS)
    sampling = dataclasses.replace(module.sampling, guidance_scale=guidance_scale)
    images = module.sample_images([p for p in prompts for _ in range(PER_CLASS)], sampling,
                                  torch.Generator(module.device).manual_seed(0))
    grid = to_digit_grid(images.cpu())
    return min(float(np.mean((reading := judge.read(grid)).confident & (reading.digits == wanted)))
               for judge in judges())


@pytest.fixture(scope="module")
def tokenizer_ckpt(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tokenizer")
    train(compose_train(tmp, *TOKENIZER, fast=False))
    return tmp / "run" / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("seed", [42, 1])
def test_a_short_muse_digits_run_draws_the_captioned_digit(tmp_path, tokenizer_ckpt, seed):
    before = {}

    def untrained(module):
        module.trainer.datamodule.setup("fit")
        module.use_captions(module.trainer.datamodule.caption_source())
        before["share"] = caption_reads(module, 3.0)

    run = train(compose_train(tmp_path, *RUN, f"model.tokenizer_ckpt={tokenizer_ckpt}", f"seed={seed}", fast=False),
                [BeforeFit(untrained)])
    module = run.module.eval()
    guided, unguided = caption_reads(module, 3.0), caption_reads(module, 1.0)
    print(f"seed {seed}: untrained {before['share']:.3f}, guided {guided:.3f}, unguided {unguided:.3f}")
    assert before["share"] < 0.1
    assert guided >= BOUND
    assert guided > unguided, "guidance makes the samples follow the caption"
