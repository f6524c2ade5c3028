"""cGAN with a projection discriminator (Miyato & Koyama 2018) on the SNGAN ResNet nets.

G: the ResNet generator with class-conditional batch norm (a per-class gain and bias after a shared,
affine-free batch norm). D: the ResNet discriminator's features phi(x) scored as
``psi(phi(x)) + <embed(y), phi(x)>``: the inner product with a class embedding is the projection.

Labels are one class index per image. CelebA's default labels are a multi-label (N x 40 attributes):
pick one attribute with ``data.label_attr=Smiling data.num_classes=2``.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from parti_exp.nets.resnet import ResNetDiscriminator, ResNetGenerator, maybe_spectral_norm
from parti_exp.runtime.validation import require


def class_indices(labels: torch.Tensor | None) -> torch.Tensor:
    """``labels`` checked to be one class index per image. Their range is not checked here: that would
    synchronise with the GPU on every forward (the sample CLI checks requested classes itself)."""
    if labels is None:
        raise ValueError("a class-conditional net needs labels: one class index per image")
    if labels.dim() != 1:
        raise ValueError(
            f"a class-conditional net needs one class index per image, got labels of shape {tuple(labels.shape)}. "
            "CelebA gives its 40 attributes as a multi-label unless one is chosen: "
            "data.label_attr=Smiling data.num_classes=2"
        )
    return labels.long()


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm without its own affine, followed by a gain and a bias looked up per class."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if labels.is_floating_point():
            # B x num_classes class weights: gain and bias are the same mix of the classes' embeddings.
            gain, bias = labels @ self.gain.weight, labels @ self.bias.weight
        else:
            gain, bias = self.gain(labels), self.bias(labels)
        return self.norm(x) * gain[:, :, None, None] + bias[:, :, None, None]


class ConditionalResNetGenerator(ResNetGenerator):
    """The ResNet generator with conditional batch norm in every up-block."""

    def __init__(
        self, latent_dim: int = 128, img_size: int = 32, channels: int = 3, width: int = 256, num_classes: int = 10
    ) -> None:
        require(num_classes >= 1, "num_classes", f"must be >= 1, got {num_classes}")
        norm = functools.partial(ConditionalBatchNorm2d, num_classes=num_classes)
        super().__init__(latent_dim=latent_dim, img_size=img_size, channels=channels, width=width, norm=norm)
        self.num_classes = num_classes

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(z, class_indices(labels))

    def forward_class_weights(self, z: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
        """Images for a mix of classes: ``class_weights`` (B x num_classes, rows summing to 1) weighs every
        class embedding; a one-hot row gives that class's image, so interpolating the weights interpolates the
        embeddings linearly."""
        if class_weights.shape != (z.shape[0], self.num_classes):
            expected = (z.shape[0], self.num_classes)
            raise ValueError(f"class_weights must be {expected}, got {tuple(class_weights.shape)}")
        return super().forward(z, class_weights.float())


class ProjectionDiscriminator(nn.Module):
    """``psi(phi(x)) + <embed(y), phi(x)>`` over the ResNet discriminator's features phi."""

    def __init__(
        self, img_size: int = 32, channels: int = 3, width: int = 128, num_classes: int = 10, spectral_norm: bool = True
    ) -> None:
        super().__init__()
        require(num_classes >= 1, "num_classes", f"must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.backbone = ResNetDiscriminator(
            img_size=img_size, channels=channels, width=width, spectral_norm=spectral_norm
        )
        embed = nn.Embedding(num_classes, width)
        nn.init.xavier_uniform_(embed.weight)
        self.embed = maybe_spectral_norm(embed, spectral_norm)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """phi(x): the ResNet features both terms read (B x width)."""
        return self.backbone.features(images)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        labels = class_indices(labels)
        phi = self.backbone.features(images)
        return self.backbone.head(phi).flatten() + (self.embed(labels) * phi).sum(dim=1)
