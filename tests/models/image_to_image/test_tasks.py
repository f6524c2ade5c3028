"""Each task's degradation against a hand computation: the down-sampling and its scale, the noise level, the blur
kernel, the holes' coverage and fill, the luma; the seeded streams; and the data each task accepts."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from parti_exp.data import DigitsDataModule, DigitStylesDataModule
from parti_exp.errors import ConfigError
from parti_exp.models.image_to_image.tasks import (
    LUMA,
    Colorize,
    Deblur,
    Denoise,
    ImageTranslation,
    Inpaint,
    SuperResolution,
    gaussian_kernel,
)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_box_super_resolution_averages_each_block_and_the_baseline_is_bicubic(scale):
    task = SuperResolution(img_size=16, channels=3, scale=scale)
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    inputs, targets = task.pair(images, None)
    assert task.input_size == 16 // scale and task.upscale == scale and task.input_channels == 3
    assert inputs.shape == (2, 3, 16 // scale, 16 // scale) and targets is images
    # pixel (i, j) of the input is the mean of the scale x scale block at (i * scale, j * scale)
    block = images[1, 2, scale : 2 * scale, 0:scale]
    torch.testing.assert_close(inputs[1, 2, 1, 0], block.mean())
    baseline = task.baseline(inputs)
    expected = F.interpolate(inputs, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)
    assert baseline.shape == images.shape
    torch.testing.assert_close(baseline, expected)


def test_bicubic_down_sampling_is_antialiased_and_in_range():
    task = SuperResolution(img_size=16, channels=1, scale=4, downsample="bicubic")
    stripes = torch.ones(1, 1, 16, 16)
    stripes[..., ::2] = -1  # one-pixel stripes: an antialiased 4x reduction averages them to grey
    small, _ = task.pair(stripes, None)
    assert small.shape == (1, 1, 4, 4)
    assert small.abs().max() < 0.2
    assert small.min() >= -1 and small.max() <= 1


@pytest.mark.parametrize("overrides,key", [({"scale": 3}, "task.scale"), ({"downsample": "nearest"}, "task.downsample"),
                                           ({"scale": 8, "img_size": 8}, "task.scale")])
def test_super_resolution_refuses_what_it_cannot_make(overrides, key):
    with pytest.raises(ConfigError, match=key):
        SuperResolution(**{"img_size": 16, "channels": 1, **overrides})


def test_denoise_adds_noise_of_sigma_on_the_unit_pixel_scale():
    task = Denoise(img_size=16, channels=1, sigma=0.05)
    grey = torch.zeros(64, 1, 16, 16)  # mid-grey: noise this small is never clipped
    noisy, target = task.pair(grey, task.generator("cpu", "train", 0, 0))
    # sigma 0.05 on [0, 1] is 0.1 on the [-1, 1] scale the models work in
    assert abs(float((noisy - grey).std()) - 0.1) < 0.003
    assert abs(float((noisy - grey).mean())) < 0.003
    assert target is grey
    clipped, _ = Denoise(img_size=16, channels=1, sigma=0.5).pair(torch.ones(4, 1, 16, 16), None)
    assert clipped.max() == 1 and clipped.min() >= -1  # clipped to the pixel range, as a saved noisy image is
    torch.testing.assert_close(task.baseline(noisy), noisy)


def test_the_streams_are_seeded_by_seed_and_position():
    task = Denoise(img_size=8, channels=1, sigma=0.1, seed=3)
    images = torch.zeros(2, 1, 8, 8)
    draw = lambda *stream: task.pair(images, task.generator("cpu", *stream))[0]
    torch.testing.assert_close(draw("train", 5, 0), draw("train", 5, 0), rtol=0, atol=0)
    assert not torch.equal(draw("train", 5, 0), draw("train", 6, 0))  # the next step
    assert not torch.equal(draw("train", 5, 0), draw("train", 5, 1))  # another rank
    other_seed = Denoise(img_size=8, channels=1, sigma=0.1, seed=4)
    assert not torch.equal(draw("train", 5, 0), other_seed.pair(images, other_seed.generator("cpu", "train", 5, 0))[0])


def test_deblur_convolves_with_the_normalised_gaussian():
    sigma = 1.0
    kernel = gaussian_kernel(sigma)
    assert len(kernel) == 2 * math.ceil(3 * sigma) + 1
    torch.testing.assert_close(kernel.sum(), torch.tensor(1.0))
    torch.testing.assert_close(kernel[3], torch.tensor(1.0) / torch.exp(-0.5 * (torch.arange(-3, 4.0)) ** 2).sum())
    task = Deblur(img_size=16, channels=3, sigma=sigma)
    delta = torch.zeros(1, 3, 16, 16)
    delta[0, 1, 8, 8] = 1.0
    blurred, _ = task.pair(delta, None)
    # a point far from the edges spreads into the outer product of the kernel with itself, in its own channel only
    torch.testing.assert_close(blurred[0, 1, 5:12, 5:12], torch.outer(kernel, kernel))
    assert blurred[0, 0].abs().max() == 0 and blurred[0, 2].abs().max() == 0
    flat, _ = task.pair(torch.full((1, 3, 16, 16), 0.3), None)
    torch.testing.assert_close(flat, torch.full_like(flat, 0.3))  # reflected edges: a flat image stays flat
    with pytest.raises(ConfigError, match="task.sigma"):
        Deblur(img_size=8, channels=1, sigma=3.0)


def test_inpaint_boxes_cover_what_their_sides_say_and_the_mask_is_a_channel():
    task = Inpaint(img_size=16, channels=1, boxes=1, min_size=0.5, max_size=0.5)
    images = torch.rand(32, 1, 16, 16) * 2 - 1
    inputs, targets = task.pair(images, task.generator("cpu", "train", 0, 0))
    assert task.input_channels == 2 and inputs.shape == (32, 2, 16, 16) and targets is images
    image, mask = inputs[:, :1], inputs[:, 1:]
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    # one 8 x 8 box per image: a quarter of the pixels, as one rectangle
    assert (mask.sum((1, 2, 3)) == 64).all()
    rows, cols = mask[:, 0].amax(2), mask[:, 0].amax(1)
    assert (rows.sum(1) == 8).all() and (cols.sum(1) == 8).all()
    assert (image[mask.bool()] == 0).all()  # holes are mid-grey
    torch.testing.assert_close(image[~mask.bool()], images[~mask.bool()])  # the rest is the image
    # the boxes land everywhere: every pixel is missing in some image of a larger batch
    many, _ = task.pair(torch.zeros(400, 1, 16, 16), task.generator("cpu", "train", 0, 1))
    assert many[:, 1].amax(0).min() == 1


def test_inpaint_mean_coverage_matches_the_box_sizes():
    task = Inpaint(img_size=32, channels=3, boxes=1, min_size=0.25, max_size=0.5)
    inputs, _ = task.pair(torch.zeros(2000, 3, 32, 32), task.generator("cpu", "train", 0, 0))
    # E[h w] / S^2 = E[side share]^2 with sides uniform in [0.25, 0.5]: 0.375^2 (rounding to whole pixels aside)
    assert abs(float(inputs[:, 3].mean()) - 0.375**2) < 0.005


def test_inpaint_keeps_the_known_pixels_and_the_baseline_fills_holes_with_the_known_mean():
    task = Inpaint(img_size=8, channels=1)
    image = torch.full((1, 1, 8, 8), 0.5)
    image[..., :4, :] = -0.5
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[..., :2, :] = True  # the top quarter is missing
    inputs = task.model_input(image, mask)
    outputs = torch.full((1, 1, 8, 8), 0.9)
    finished = task.finish(outputs, inputs)
    torch.testing.assert_close(finished[mask], outputs[mask])
    torch.testing.assert_close(finished[~mask], image[~mask])
    known_mean = (2 * 8 * -0.5 + 4 * 8 * 0.5) / 48
    torch.testing.assert_close(task.baseline(inputs)[mask], torch.full((16,), known_mean))
    with pytest.raises(ConfigError, match="mask"):
        task.model_input(image, None)


def test_colorize_inputs_the_luma_and_needs_rgb():
    task = Colorize(img_size=4, channels=3)
    images = torch.rand(2, 3, 4, 4) * 2 - 1
    grey, _ = task.pair(images, None)
    expected = sum(w * images[:, c : c + 1] for c, w in enumerate(LUMA))
    assert task.input_channels == 1 and grey.shape == (2, 1, 4, 4)
    torch.testing.assert_close(grey, expected)
    torch.testing.assert_close(task.baseline(grey), expected.expand(-1, 3, -1, -1))
    with pytest.raises(ConfigError, match="needs RGB data"):
        Colorize(img_size=4, channels=1)


def test_paired_splits_the_stacked_channels_and_each_task_checks_its_data():
    task = ImageTranslation(img_size=4, channels=3)
    pairs = torch.rand(2, 6, 4, 4)
    inputs, targets = task.pair(pairs, None)
    assert torch.equal(inputs, pairs[:, :3]) and torch.equal(targets, pairs[:, 3:])
    with pytest.raises(ConfigError, match="task=paired reads each input beside its target"):
        task.check_data(DigitsDataModule())
    with pytest.raises(ConfigError, match="task=paired reads each input beside its target"):
        task.check_data(DigitStylesDataModule())  # pairs, but not partners
    with pytest.raises(ConfigError, match="task=denoise makes its inputs from plain images"):
        Denoise(img_size=16, channels=1).check_data(DigitStylesDataModule())
    Denoise(img_size=16, channels=1).check_data(DigitsDataModule())


def test_show_puts_any_input_at_the_outputs_shape():
    sr = SuperResolution(img_size=8, channels=1, scale=4)
    small = torch.arange(4.0).view(1, 1, 2, 2)
    shown = sr.show(small)
    assert shown.shape == (1, 1, 8, 8) and torch.equal(shown[0, 0, :4, :4], torch.zeros(4, 4))
    colour = Colorize(img_size=4, channels=3)
    assert colour.show(torch.zeros(1, 1, 4, 4)).shape == (1, 3, 4, 4)
    holes = Inpaint(img_size=4, channels=1)
    assert holes.show(torch.zeros(1, 2, 4, 4)).shape == (1, 1, 4, 4)  # the mask channel is not shown
    assert np.isclose(float(sr.show(small).mean()), 1.5)
