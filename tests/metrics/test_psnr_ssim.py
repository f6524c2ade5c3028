"""PSNR and SSIM: against the formula and known values, per image, and over two folders matched by file name
(``python -m parti_exp.evaluate outputs_dir=… targets_dir=…``)."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from parti_exp.errors import BadDataError, ConfigError, MissingInputError
from parti_exp.evaluate import evaluate
from parti_exp.metrics.psnr_ssim import MAX_PSNR, psnr, ssim


def test_psnr_is_the_formula_per_image_on_the_signed_unit_range():
    targets = torch.zeros(2, 1, 4, 4)
    images = targets.clone()
    images[0] += 0.1  # MSE 0.01 on a peak-to-peak range of 2: 10 log10(4 / 0.01)
    images[1, 0, 0, 0] = 2.0  # MSE 4 / 16
    values = psnr(images, targets)
    torch.testing.assert_close(values, torch.tensor([10 * math.log10(4 / 0.01), 10 * math.log10(4 / 0.25)]))
    assert psnr(targets, targets).tolist() == [MAX_PSNR, MAX_PSNR]  # equal images: capped, not infinite
    # the same pixels on the [0, 1] scale with data_range 1 give the same PSNR
    torch.testing.assert_close(psnr((images + 1) / 2, (targets + 1) / 2, data_range=1.0), values)


def test_ssim_is_one_for_equal_images_and_falls_with_distortion():
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.testing.assert_close(ssim(images, images), torch.ones(3))
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(1))
    slight, strong = ssim(images + 0.05 * noise, images), ssim(images + 0.5 * noise, images)
    assert (slight > strong).all() and (slight < 1).all()
    # the mean over channels: a distortion of one channel of three costs a third as much
    one_channel = images.clone()
    one_channel[:, 0] += 0.5 * noise[:, 0]
    torch.testing.assert_close(1 - ssim(one_channel, images), (1 - ssim(images + 0.5 * noise, images)) / 3, atol=0.03,
                               rtol=0.1)
    # small images use a window that fits them
    assert ssim(images[..., :4, :4], images[..., :4, :4]).tolist() == pytest.approx([1, 1, 1])


def test_evaluate_matches_outputs_to_targets_by_file_name(evaluate_cfg, png_writer, tmp_path):
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 256, size=(4, 1, 16, 16), dtype=np.uint8)
    outputs = np.clip(targets.astype(int) + rng.integers(-20, 21, size=targets.shape), 0, 255).astype(np.uint8)
    png_writer(tmp_path / "targets", targets)
    png_writer(tmp_path / "outputs", outputs)
    Image.new("L", (40, 20)).save(tmp_path / "outputs" / "sheet.png")  # an output without a target: left out
    cfg = evaluate_cfg(f"outputs_dir={tmp_path / 'outputs'}", f"targets_dir={tmp_path / 'targets'}")
    result = evaluate(cfg, tmp_path / "run")
    expected = psnr(torch.from_numpy(outputs).float() / 255, torch.from_numpy(targets).float() / 255, 1.0).mean()
    assert result["psnr"] == pytest.approx(float(expected), rel=1e-5)
    assert 0 < result["ssim"] < 1
    assert result["num_pairs"] == 4 and result["unmatched_outputs"] == 1
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["psnr"] == result["psnr"]


def test_evaluate_refuses_incomplete_or_mismatched_folders(evaluate_cfg, png_writer, tmp_path):
    images = np.zeros((3, 1, 8, 8), dtype=np.uint8)
    png_writer(tmp_path / "targets", images)
    png_writer(tmp_path / "outputs", images[:2])
    cfg = evaluate_cfg(f"outputs_dir={tmp_path / 'outputs'}", f"targets_dir={tmp_path / 'targets'}")
    with pytest.raises(MissingInputError, match="no output for 1 of the 3 targets.*0002.png"):
        evaluate(cfg, tmp_path / "run")
    Image.new("L", (16, 16)).save(tmp_path / "outputs" / "0002.png")
    with pytest.raises(BadDataError, match="0002.png is 16 x 16 px, its target .* 8 x 8"):
        evaluate(cfg, tmp_path / "run")
    Image.new("L", (8, 8)).save(tmp_path / "outputs" / "0002.jpg")
    with pytest.raises(BadDataError, match="holds 0002.jpg and 0002.png"):
        evaluate(cfg, tmp_path / "run")
    with pytest.raises(ConfigError, match="both outputs_dir=DIR and targets_dir=DIR"):
        evaluate(evaluate_cfg(f"outputs_dir={tmp_path / 'outputs'}"), tmp_path / "run")
