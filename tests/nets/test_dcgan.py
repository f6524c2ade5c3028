import pytest
import torch
from torch import nn

from parti_exp.nets.dcgan import DCGANDiscriminator, DCGANGenerator


@pytest.mark.parametrize("img_size", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_output_range(img_size, channels):
    g = DCGANGenerator(latent_dim=16, img_size=img_size, channels=channels, width=8)
    d = DCGANDiscriminator(img_size=img_size, channels=channels, width=8)
    images = g(torch.randn(5, 16))
    assert images.shape == (5, channels, img_size, img_size)
    assert images.min() >= -1 and images.max() <= 1
    assert d(images).shape == (5,)


@pytest.mark.parametrize("norm,expected", [("batch", nn.BatchNorm2d), ("layer", nn.GroupNorm)])
def test_discriminator_norm_choice(norm, expected):
    d = DCGANDiscriminator(img_size=32, channels=1, width=8, norm=norm)
    assert any(isinstance(m, expected) for m in d.modules())


def test_wgan_critic_has_no_batch_norm_and_is_per_sample():
    d = DCGANDiscriminator(img_size=32, channels=1, width=8, norm="none").eval()
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in d.modules())
    # Without batch statistics, a sample's score must not depend on the rest of the batch.
    x = torch.randn(4, 1, 32, 32)
    assert torch.allclose(d(x)[:1], d(x[:1]), atol=1e-6)


@pytest.mark.parametrize("bad", [0, 12, 30, 4])
def test_unsupported_image_size_is_refused_with_the_supported_sizes(bad):
    with pytest.raises(ValueError, match=r"4 \* 2\*\*k.*data.img_size"):
        DCGANGenerator(img_size=bad)
    with pytest.raises(ValueError, match="data.img_size"):
        DCGANDiscriminator(img_size=bad)


def test_unknown_norm_is_refused():
    with pytest.raises(ValueError, match="batch, layer, none"):
        DCGANDiscriminator(norm="instance")
