import pytest
import torch
from torch.nn.utils import parametrize

from parti_exp.nets.resnet import ResNetDiscriminator, ResNetGenerator


@pytest.mark.parametrize("img_size", [16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_output_range(img_size, channels):
    g = ResNetGenerator(latent_dim=16, img_size=img_size, channels=channels, width=8)
    d = ResNetDiscriminator(img_size=img_size, channels=channels, width=8)
    images = g(torch.randn(5, 16))
    assert images.shape == (5, channels, img_size, img_size)
    assert images.min() >= -1 and images.max() <= 1
    assert d(images).shape == (5,)


def test_the_paper_layout_at_32_px():
    # Miyato et al. 2018, CIFAR-10: three up-blocks in G; four blocks in D, the first two downsampling.
    g, d = ResNetGenerator(img_size=32), ResNetDiscriminator(img_size=32)
    assert len(g.blocks) == 3 and g.width == 256
    assert [block.downsample for block in d.blocks] == [True, True, False, False]
    assert d.features(torch.randn(2, 3, 32, 32)).shape == (2, 128)


def spectrally_normed(net):
    return [m for m in net.modules() if parametrize.is_parametrized(m, "weight")]


def largest_singular_value(weight: torch.Tensor) -> float:
    return torch.linalg.matrix_norm(weight.detach().flatten(1), ord=2).item()


def test_spectral_norm_makes_every_layer_1_lipschitz():
    torch.manual_seed(0)
    d = ResNetDiscriminator(img_size=16, channels=3, width=16, spectral_norm=True)
    layers = spectrally_normed(d)
    # 16 px: a downsampling block (2 convs + 1x1 shortcut), two blocks at 8x8 (2 convs each), the head
    assert len(layers) == 3 + 2 + 2 + 1
    # Registration runs 15 power iterations on the initial weights.
    for layer in layers:
        assert largest_singular_value(layer.weight) == pytest.approx(1.0, abs=0.01)
    # New raw weights, far from norm 1 and with new singular vectors: the iteration must track them.
    with torch.no_grad():
        for layer in layers:
            layer.parametrizations.weight.original.normal_(0.0, 3.0)
    assert min(largest_singular_value(layer.parametrizations.weight.original) for layer in layers) > 2.0
    d.train()
    d(torch.randn(2, 3, 16, 16))  # one power iteration per training-mode forward
    assert max(largest_singular_value(layer.weight) for layer in layers) > 1.05  # not converged after one
    for _ in range(100):
        d(torch.randn(2, 3, 16, 16))
    for layer in layers:
        assert largest_singular_value(layer.weight) == pytest.approx(1.0, abs=1e-3)


def test_without_spectral_norm_there_is_no_parametrization():
    assert spectrally_normed(ResNetDiscriminator(img_size=16, width=8, spectral_norm=False)) == []


def test_discriminator_scores_each_image_on_its_own():
    d = ResNetDiscriminator(img_size=32, channels=1, width=8).eval()
    x = torch.randn(4, 1, 32, 32)
    assert torch.allclose(d(x)[:1], d(x[:1]), atol=1e-5)


@pytest.mark.parametrize("bad", [8, 12, 48])
def test_unsupported_image_size_is_refused(bad):
    with pytest.raises(ValueError, match=r"4 \* 2\*\*k.*at least 16.*data.img_size"):
        ResNetGenerator(img_size=bad)
    with pytest.raises(ValueError, match="data.img_size"):
        ResNetDiscriminator(img_size=bad)
