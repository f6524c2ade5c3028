import pytest
import torch

from parti_exp.nets.cgan_pd import ConditionalBatchNorm2d, ConditionalResNetGenerator, ProjectionDiscriminator


def test_projection_discriminator_on_a_hand_built_example():
    d = ProjectionDiscriminator(img_size=16, channels=1, width=3, num_classes=2, spectral_norm=False)
    phi = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]])
    d.backbone.features = lambda images: phi  # a known phi(x), to check the head by hand
    with torch.no_grad():
        d.backbone.head.weight.copy_(torch.tensor([[1.0, -1.0, 2.0]]))
        d.backbone.head.bias.fill_(0.5)
        d.embed.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
    scores = d(torch.zeros(2, 1, 16, 16), torch.tensor([1, 0]))
    # psi(phi) = <(1, -1, 2), phi> + 0.5; projection = <embed[y], phi>
    expected = [(1 - 2 + 6 + 0.5) + (2 + 3), (0.5 - 0 - 2 + 0.5) + 0.5]
    assert scores.tolist() == pytest.approx(expected)


def test_projection_with_real_features_and_spectral_norm():
    torch.manual_seed(0)
    d = ProjectionDiscriminator(img_size=16, channels=3, width=8, num_classes=4).eval()
    x, y = torch.randn(5, 3, 16, 16), torch.tensor([0, 1, 2, 3, 1])
    phi = d.backbone.features(x)
    expected = d.backbone.head(phi).flatten() + (d.embed.weight[y] * phi).sum(1)
    torch.testing.assert_close(d(x, y), expected)
    # The label enters only through the projection: the score difference between two classes is linear in phi.
    torch.testing.assert_close(
        d(x, torch.full((5,), 2)) - d(x, torch.full((5,), 0)), phi @ (d.embed.weight[2] - d.embed.weight[0])
    )


def test_conditional_batch_norm_applies_the_class_gain_and_bias():
    norm = ConditionalBatchNorm2d(channels=2, num_classes=3)
    with torch.no_grad():
        norm.gain.weight[1] = torch.tensor([2.0, 3.0])
        norm.bias.weight[1] = torch.tensor([-1.0, 1.0])
    x = torch.randn(4, 2, 5, 5)
    normalized = torch.nn.functional.batch_norm(x, None, None, training=True)
    out = norm(x, torch.tensor([1, 1, 0, 0]))
    torch.testing.assert_close(
        out[:2], normalized[:2] * torch.tensor([2.0, 3.0]).view(1, 2, 1, 1) + torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1)
    )
    torch.testing.assert_close(out[2:], normalized[2:])  # class 0 still has the identity affine


def test_generator_output_depends_on_the_class():
    torch.manual_seed(0)
    g = ConditionalResNetGenerator(latent_dim=16, img_size=16, channels=1, width=8, num_classes=3)
    with torch.no_grad():
        for module in g.modules():
            if isinstance(module, ConditionalBatchNorm2d):
                module.gain.weight.normal_(1.0, 0.5)
    g.eval()
    z = torch.randn(1, 16).expand(3, 16)
    images = g(z, torch.tensor([0, 1, 2]))
    assert images.shape == (3, 1, 16, 16)
    assert not torch.allclose(images[0], images[1]) and not torch.allclose(images[1], images[2])


@pytest.mark.parametrize("net", ["generator", "discriminator"])
def test_multi_label_targets_are_refused_with_the_remedy(net):
    labels = torch.zeros(4, 40, dtype=torch.long)  # CelebA's 40 attributes
    if net == "generator":
        call = lambda: ConditionalResNetGenerator(latent_dim=8, img_size=16, width=8)(torch.randn(4, 8), labels)
    else:
        call = lambda: ProjectionDiscriminator(img_size=16, width=8)(torch.randn(4, 3, 16, 16), labels)
    with pytest.raises(ValueError, match=r"one class index per image.*\(4, 40\).*data.label_attr=Smiling"):
        call()


def test_missing_labels_are_refused():
    with pytest.raises(ValueError, match="needs labels"):
        ConditionalResNetGenerator(latent_dim=8, img_size=16, width=8)(torch.randn(2, 8))
