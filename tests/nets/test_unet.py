"""The U-Net's shapes for every image size and upscale factor, its depth from the input size, its skips, and its
refusals."""

import pytest
import torch
from torch import nn

from parti_exp.errors import ConfigError
from parti_exp.nets.unet import UNetGenerator, unet_depth


@pytest.mark.parametrize("img_size,in_channels,out_channels",
                         [(4, 1, 1), (8, 2, 1), (16, 1, 3), (32, 4, 3), (64, 3, 3), (128, 1, 1), (256, 3, 3)])
def test_output_shape_and_range_for_every_size(img_size, in_channels, out_channels):
    net = UNetGenerator(img_size=img_size, in_channels=in_channels, out_channels=out_channels, width=2)
    out = net(torch.randn(1, in_channels, img_size, img_size))
    assert out.shape == (1, out_channels, img_size, img_size)
    assert out.abs().max() <= 1
    assert net.depth == unet_depth(img_size, 8)


@pytest.mark.parametrize("img_size,upscale", [(16, 2), (16, 4), (16, 8), (32, 4), (64, 8), (256, 4)])
def test_upscaling_takes_the_small_input_to_the_full_size(img_size, upscale):
    net = UNetGenerator(img_size=img_size, in_channels=1, out_channels=1, upscale=upscale, width=2)
    shuffles = [m for m in net.modules() if isinstance(m, nn.PixelShuffle)]
    assert len(shuffles) == {2: 1, 4: 2, 8: 3}[upscale]
    assert net(torch.randn(1, 1, img_size // upscale, img_size // upscale)).shape == (1, 1, img_size, img_size)


def test_depth_halves_down_to_two_by_two_within_max_depth():
    assert [unet_depth(size, 8) for size in (2, 4, 8, 16, 256)] == [1, 1, 2, 3, 7]
    assert unet_depth(256, 4) == 4
    net = UNetGenerator(img_size=32, in_channels=1, out_channels=1, width=4)
    widths = [block[0].out_channels for block in net.down]
    assert widths == [8, 16, 32, 32]  # doubling per level, up to 8 x width


def test_the_skips_carry_the_input_past_the_bottleneck():
    torch.manual_seed(0)
    net = UNetGenerator(img_size=16, in_channels=1, out_channels=1, width=4, norm="none").eval()
    x = torch.zeros(1, 1, 16, 16, requires_grad=True)
    net(x)[0, 0, 3, 3].backward()
    # the output pixel depends most on the input pixel it sits on: the full-resolution skip reaches it directly
    grad = x.grad[0, 0].abs()
    assert grad[2:5, 2:5].sum() > grad[10:, 10:].sum()


@pytest.mark.parametrize("kwargs,key", [
    ({"upscale": 3}, "upscale"), ({"norm": "layer"}, "model.generator.norm"), ({"dropout": 1.0}, "dropout"),
    ({"img_size": 6, "upscale": 4}, "input side"),
])
def test_bad_settings_are_refused_by_name(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        UNetGenerator(**{"img_size": 16, "in_channels": 1, "out_channels": 1, **kwargs})
