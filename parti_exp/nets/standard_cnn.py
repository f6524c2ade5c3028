"""The "standard CNN" of Miyato et al. 2018 (Spectral Normalization for GANs, table 3), the DCGAN-style nets that
StudioGAN's DCGAN and most CIFAR-10 DCGAN baselines use, with batch norm in both nets.

G: z -> linear to a 4x4 map of ``8 * width`` channels -> x2 transposed-conv stages (4x4, stride 2) halving the
channels, each with batch norm and ReLU -> 3x3 conv to the image, tanh. D: per stage a 3x3 conv (stride 1) and a 4x4
conv (stride 2) doubling the channels from ``width``, each with batch norm (dropped where spectral norm is on), then
a 3x3 conv to ``8 * width`` channels, sum pooling over the map, a linear logit. At 32 px and width 64 these are
StudioGAN's CIFAR-10 DCGAN nets: 3,812,355 and 2,931,009 parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from parti_exp.nets.dcgan import upsampling_stages
from parti_exp.nets.resnet import maybe_spectral_norm


class StandardCNNGenerator(nn.Module):
    def __init__(self, latent_dim: int = 128, img_size: int = 32, channels: int = 3, width: int = 64) -> None:
        super().__init__()
        stages = upsampling_stages(img_size)
        self.latent_dim = latent_dim
        self.top = width * 2**stages  # 512 at 32 px and width 64
        self.linear = nn.Linear(latent_dim, self.top * 4 * 4)
        layers: list[nn.Module] = []
        for i in range(stages):
            c_in, c_out = self.top // 2**i, self.top // 2 ** (i + 1)
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(self.top // 2**stages, channels, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_orthogonal(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.linear(z).view(z.shape[0], self.top, 4, 4))


class StandardCNNDiscriminator(nn.Module):
    def __init__(
        self, img_size: int = 32, channels: int = 3, width: int = 64, spectral_norm: bool = False
    ) -> None:
        super().__init__()
        stages = upsampling_stages(img_size)
        def wrap(layer: nn.Module) -> nn.Module:
            return maybe_spectral_norm(layer, spectral_norm)

        # Batch norm only without spectral norm: SNGAN's D normalises its weights instead of its activations.
        norm = (lambda c: nn.Identity()) if spectral_norm else nn.BatchNorm2d
        layers: list[nn.Module] = []
        c_in = channels
        for i in range(stages):
            c_out = width * 2**i
            layers += [
                wrap(nn.Conv2d(c_in, c_out, 3, 1, 1)), norm(c_out), nn.ReLU(inplace=True),
                wrap(nn.Conv2d(c_out, c_out, 4, 2, 1)), norm(c_out), nn.ReLU(inplace=True),
            ]
            c_in = c_out
        top = width * 2**stages
        layers += [wrap(nn.Conv2d(c_in, top, 3, 1, 1)), norm(top), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers)
        self.linear = wrap(nn.Linear(top, 1))
        init_orthogonal(self)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(self.net(images).sum(dim=(2, 3))).flatten()  # (B,)


def init_orthogonal(module: nn.Module) -> None:
    """Orthogonal weights and zero biases for every conv and linear layer (StudioGAN's ``ortho`` init)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.orthogonal_(m.weight)
            nn.init.zeros_(m.bias)
