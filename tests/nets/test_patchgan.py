"""The PatchGAN: its patch grid for every size, each sample scored on its own, its refusals, and the conditional form
that sees the translator's input beside the image."""

import pytest
import torch
from torch import nn

from parti_exp.errors import ConfigError
from parti_exp.nets.patchgan import ConditionalPatchDiscriminator, PatchDiscriminator, patch_layers


@pytest.mark.parametrize("img_size,layers", [(8, 1), (12, 2), (16, 2), (32, 3), (64, 3), (256, 3)])
def test_the_default_depth_is_as_many_layers_as_the_size_allows_up_to_pixtopixs(img_size, layers):
    assert patch_layers(img_size) == layers
    d = PatchDiscriminator(img_size=img_size, channels=3, width=4, n_layers=None)
    side = img_size // 2**layers - 2  # the two stride-1 4x4 convs each take a pixel off
    assert d(torch.randn(2, 3, img_size, img_size)).shape == (2, 1, side, side)


@pytest.mark.parametrize("img_size,n_layers", [(30, 2), (8, 2), (32, 0)])
def test_patch_discriminator_refuses_sizes_it_cannot_score(img_size, n_layers):
    with pytest.raises(ConfigError, match=r"data\.img_size.*model\.discriminator\.n_layers"):
        PatchDiscriminator(img_size=img_size, n_layers=n_layers)


@pytest.mark.parametrize("train", [True, False])
def test_patch_discriminator_scores_each_sample_on_its_own(train):
    torch.manual_seed(2)
    d = PatchDiscriminator(img_size=32, channels=3, width=8, n_layers=3).train(train)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in d.modules())
    x = torch.randn(4, 3, 32, 32)
    scores = d(x)
    assert scores.shape == (4, 1, 2, 2)
    torch.testing.assert_close(d(x[:1]), scores[:1], rtol=0, atol=1e-6)
    assert not torch.allclose(scores[0], scores[1])  # the check above is not vacuous


@pytest.mark.parametrize("img_size,condition_size,condition_channels", [(16, 16, 2), (16, 4, 1), (32, 8, 3)])
def test_the_conditional_discriminator_sees_the_condition_at_the_images_size(img_size, condition_size,
                                                                             condition_channels):
    torch.manual_seed(0)
    d = ConditionalPatchDiscriminator(img_size=img_size, channels=1, condition_channels=condition_channels, width=4)
    images = torch.randn(2, 1, img_size, img_size)
    condition = torch.randn(2, condition_channels, condition_size, condition_size)
    scores = d(images, condition)
    assert scores.shape[:2] == (2, 1)
    assert d.patches.net[0].in_channels == 1 + condition_channels
    # the verdict depends on the condition: the same image beside another input scores otherwise
    assert not torch.allclose(scores, d(images, condition.flip(0)))
