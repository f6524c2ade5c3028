"""pix2pix (`model=pix2pix`) as a user trains it on the digits: the task's inputs through the adversarial loop's
seams (D conditioned on the input where labels go), G's L1 term, the validation metrics against their floor, the
epoch grid and the image metrics of its outputs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra_compose import compose_train
from PIL import Image

from parti_exp.builders import build_module
from parti_exp.data import DigitsDataModule
from parti_exp.errors import ConfigError
from parti_exp.metrics.psnr_ssim import psnr, ssim
from parti_exp.nets.patchgan import ConditionalPatchDiscriminator
from parti_exp.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["model=pix2pix", "data.img_size=16", "trainer.log_every_n_steps=1"]


def test_the_task_sets_the_nets_shapes(tmp_path):
    for task, in_channels, upscale in (("super_resolution", 1, 4), ("inpaint", 2, 1), ("denoise", 1, 1)):
        module = build_module(compose_train(tmp_path, *TINY, f"task={task}"))
        assert module.generator.in_channels == in_channels and module.generator.upscale == upscale
        assert module.discriminator.patches.net[0].in_channels == 1 + in_channels
        inputs = torch.zeros(2, in_channels, 16 // upscale, 16 // upscale)
        assert module.translate(inputs).shape == (2, 1, 16, 16)


def test_g_loss_adds_lambda_times_l1_to_the_target(tmp_path):
    module = build_module(compose_train(tmp_path, *TINY, "task=denoise", "model.l1_weight=7"))
    inputs, targets = torch.rand(3, 1, 16, 16) * 2 - 1, torch.rand(3, 1, 16, 16) * 2 - 1
    outputs, terms = module.make_fakes(targets, inputs)
    assert set(terms) == {"l1"}
    torch.testing.assert_close(terms["l1"], 7 * (outputs - targets).abs().mean())
    torch.testing.assert_close(outputs, module.generator(inputs))


def test_pix2pix_trains_on_its_tasks_inputs_and_validates_against_the_floor(tmp_path, monkeypatch):
    seen = []
    forward = ConditionalPatchDiscriminator.forward

    def recording(self, images, condition):
        seen.append((tuple(images.shape), tuple(condition.shape)))
        return forward(self, images, condition)

    monkeypatch.setattr(ConditionalPatchDiscriminator, "forward", recording)
    cfg = compose_train(tmp_path, *TINY, "task=super_resolution", "trainer.limit_train_batches=3",
                        "metrics=classifier", "metrics.num_fake=64", "metrics.every_n_epochs=1",
                        "metrics.kid_subset_size=32", "metrics.is_splits=2", f"metrics.cache_dir={tmp_path / 'cache'}")
    run = train(cfg)
    module, logged = run.module, run.trainer.callback_metrics
    assert (module.g_step, module.d_step) == (3, 3)
    # D judges 16 px images beside the 4 x 4 input they came from, in both updates
    assert seen[0] == ((32, 1, 16, 16), (32, 1, 4, 4))
    for key in ("train/l1", "train/g_adv", "train/d_loss", "val/psnr", "val/ssim", "val/l1", "val/d_real",
                "val/fid_clf", "val/kid_clf"):
        assert key in logged and torch.isfinite(logged[key]), key
    # the floor is bicubic upsampling of the box-filtered held-out digits, whatever the model learned
    datamodule = DigitsDataModule(img_size=16)
    datamodule.setup()
    truth = torch.from_numpy(datamodule.val_set.images).float() / 127.5 - 1
    bicubic = F.interpolate(F.avg_pool2d(truth, 4), scale_factor=4, mode="bicubic", align_corners=False).clamp(-1, 1)
    assert float(logged["val/psnr_baseline"]) == pytest.approx(float(psnr(bicubic, truth).mean()), abs=1e-4)
    assert float(logged["val/ssim_baseline"]) == pytest.approx(float(ssim(bicubic, truth).mean()), abs=1e-4)
    # the epoch grid: rows of 8 inputs over outputs over targets, for the 16 first held-out digits
    grid = Image.open(tmp_path / "run" / "translations" / "epoch_0000.png")
    assert grid.size == (8 * 18 + 2, 6 * 18 + 2)
    pixels = torch.from_numpy(np.asarray(grid.convert("L"), dtype=np.float32))
    target_row = pixels[2 * 18 + 2 : 3 * 18, 2:18]
    torch.testing.assert_close(target_row, torch.from_numpy(datamodule.val_set.images[0, 0]).float(), atol=0.5, rtol=0)


def test_a_synthetic_task_refuses_paired_data_and_paired_refuses_single_images(tmp_path):
    with pytest.raises(ConfigError, match="task=paired reads each input beside its target"):
        train(compose_train(tmp_path, *TINY, "task=paired", "trainer.limit_train_batches=1"))
    with pytest.raises(ConfigError, match="task=deblur makes its inputs from plain images"):
        train(compose_train(tmp_path, *TINY, "task=deblur", "data=digit_styles", "trainer.limit_train_batches=1"))
