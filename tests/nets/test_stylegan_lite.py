import pytest
import torch
import torch.nn.functional as F

from parti_exp.nets.stylegan_lite import MappingNetwork, ModulatedConv2d, StyleGANLiteGenerator


@pytest.mark.parametrize("img_size", [16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_output_range(img_size, channels):
    g = StyleGANLiteGenerator(latent_dim=16, img_size=img_size, channels=channels, width=8)
    images = g(torch.randn(3, 16))
    assert images.shape == (3, channels, img_size, img_size)
    assert images.min() >= -1 and images.max() <= 1
    # a toRGB per resolution from 4 px up: the skip architecture
    assert len(g.blocks) == {16: 3, 32: 4, 64: 5}[img_size]


def test_demodulation_keeps_unit_variance_for_unit_variance_input():
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 32, 3, w_dim=16)
    with torch.no_grad():
        conv.affine.weight.mul_(3.0)  # styles far from 1, so modulation alone would change the variance
    x, w = torch.randn(16, 64, 18, 18), torch.randn(16, 16)
    with torch.no_grad():
        out = conv(x, w)[:, :, 1:-1, 1:-1]  # away from the zero padding
        conv.demodulate = False
        modulated_only = conv(x, w)[:, :, 1:-1, 1:-1]
    assert out.var().item() == pytest.approx(1.0, abs=0.03)
    per_image = out.var(dim=(1, 2, 3))  # whatever the image's style
    assert per_image.min().item() > 0.9 and per_image.max().item() < 1.1
    assert abs(modulated_only.var(dim=(2, 3)).mean().item() - 1.0) > 0.5  # the test can tell the difference


def test_modulated_conv_equals_convolving_each_image_with_its_own_weights():
    torch.manual_seed(1)
    conv = ModulatedConv2d(4, 5, 3, w_dim=6)
    x, w = torch.randn(3, 4, 8, 8), torch.randn(3, 6)
    style = conv.affine(w)
    reference = []
    for i in range(3):
        weight = conv.weight * conv.weight_gain * style[i].view(1, 4, 1, 1)
        weight = weight / weight.square().sum(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()
        reference.append(F.conv2d(x[i : i + 1], weight, padding=1))
    torch.testing.assert_close(conv(x, w), torch.cat(reference), rtol=1e-4, atol=1e-5)


def test_mapping_normalises_z():
    mapping = MappingNetwork(latent_dim=8, num_layers=2)
    z = torch.randn(4, 8)
    torch.testing.assert_close(mapping(z), mapping(3.0 * z))


def test_noise_is_random_in_training_and_fixed_in_eval():
    torch.manual_seed(2)
    g = StyleGANLiteGenerator(latent_dim=8, img_size=16, channels=1, width=8)
    with torch.no_grad():
        for block in g.blocks:
            for layer in block.layers:
                layer.noise.strength.fill_(0.5)
    z = torch.randn(2, 8)
    g.train()
    assert not torch.allclose(g(z), g(z))
    g.eval()
    torch.testing.assert_close(g(z), g(z))  # sampling is a function of z: fixed-noise grids compare
