"""DiffAugment: differentiable, one transform per image applied to all its channels, identity when empty."""

import pytest
import torch

from parti_exp.models.gan.augment import DiffAugment, brightness, contrast, cutout, saturation, translation


def images(n: int = 8, channels: int = 3, size: int = 16) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(n, channels, size, size) * 2 - 1


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_gradients_reach_the_input(policy):
    x = images().requires_grad_(True)
    out = DiffAugment(policy)(x)
    assert out.shape == x.shape
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_empty_policy_is_the_identity():
    x = images()
    assert DiffAugment("")(x) is x
    assert DiffAugment(" , ").transforms == []


def test_translation_shifts_each_image_as_a_whole():
    x = images(n=16) + 2.0  # no zeros in the input: a zero in the output is fill
    out = translation(x)
    shifts = set()
    for image, shifted in zip(x, out):
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(shifted, shift_with_zero_fill(image, dy, dx))
        ]
        assert len(matches) == 1, "the output is not one shift of the input shared by all channels"
        shifts.add(matches[0])
    assert len(shifts) > 1  # each image draws its own shift


def shift_with_zero_fill(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    out = torch.zeros_like(image)
    h, w = image.shape[1:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_cutout_zeroes_one_square_through_all_channels():
    x = images(n=16) + 2.0
    out = cutout(x)
    for image, cut in zip(x, out):
        zero = cut == 0
        assert torch.equal(zero[0], zero[1]) and torch.equal(zero[1], zero[2])
        assert torch.equal(cut[~zero], image[~zero])  # untouched elsewhere
        rows, cols = zero[0].nonzero(as_tuple=True)
        assert len(rows) > 0
        # a (border-clipped) square of side 8 = 0.5 * 16
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert len(rows) == height * width and height <= 8 and width <= 8


def gain_per_image(out: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """The least-squares k with out ~ k * base for each image, checked to fit exactly."""
    k = (out * base).sum((1, 2, 3), keepdim=True) / base.square().sum((1, 2, 3), keepdim=True)
    torch.testing.assert_close(out, k * base, rtol=0, atol=1e-5)
    return k.flatten()


def test_color_transforms_are_one_affine_map_per_image():
    x = images(n=32)
    offset = brightness(x) - x
    assert torch.allclose(offset, offset[:, :1, :1, :1].expand_as(x))
    assert offset.min() >= -0.5 and offset.max() < 0.5

    out, mean = contrast(x), x.mean((1, 2, 3), keepdim=True)
    factor = gain_per_image(out - mean, x - mean)  # the mean is kept, distances to it scaled
    assert factor.min() >= 0.5 and factor.max() < 1.5 and factor.std() > 0.1

    grey = x.mean(1, keepdim=True)
    factor = gain_per_image(saturation(x) - grey, x - grey)
    assert factor.min() >= 0 and factor.max() < 2 and factor.std() > 0.1
    assert torch.equal(saturation(x[:, :1]), x[:, :1])  # grayscale has no saturation to change


def test_policy_order_and_validation():
    assert DiffAugment("color, cutout").transforms == [brightness, saturation, contrast, cutout]
    with pytest.raises(ValueError, match=r"the DiffAugment policy has unknown names \['flip'\].*color"):
        DiffAugment("translation,flip")
