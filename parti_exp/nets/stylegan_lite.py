"""A small StyleGAN2-style generator (Karras et al. 2020) for 16-64 px images.

z -> mapping MLP -> w, which modulates every convolution of a synthesis network that starts from a
learned 4x4 constant. Each resolution has modulated/demodulated 3x3 convs with per-pixel noise inputs
and a 1x1 "toRGB" whose outputs are upsampled and summed across resolutions (the skip architecture).
All layers use equalized learning rate: weights are stored at unit variance and scaled at run time.

Truncation toward the mean w is the sampler's (``parti_exp.models.gan.truncation``), through ``map_to_w`` and
``synthesis``.
Left out for size: style mixing, path-length regularisation and the blurred (FIR) resampling;
upsampling is bilinear. The discriminator is the ResNet one (``parti_exp.nets.resnet``) without
spectral norm; R1 (``parti_exp.models.gan.regularizers.R1Penalty``) constrains it instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from parti_exp.nets.resnet import resnet_stages


def leaky_relu_gained(x: torch.Tensor) -> torch.Tensor:
    # The sqrt(2) gain restores the unit variance that leaky ReLU (slope 0.2) roughly halves.
    return F.leaky_relu(x, 0.2) * math.sqrt(2)


class EqualizedLinear(nn.Module):
    """A linear layer with weights ~ N(0, 1) scaled by ``lr_mul / sqrt(in_features)`` at run time, so Adam's
    update is the same relative size for every layer; ``lr_mul`` < 1 slows the layer down."""

    def __init__(
        self, in_features: int, out_features: int, bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return leaky_relu_gained(x) if self.activate else x


class MappingNetwork(nn.Module):
    """z, normalised to unit second moment, through an MLP (at 1/100 of the learning rate) to w."""

    def __init__(self, latent_dim: int, num_layers: int, lr_mul: float = 0.01) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *(EqualizedLinear(latent_dim, latent_dim, lr_mul=lr_mul, activate=True) for _ in range(num_layers))
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8))


class ModulatedConv2d(nn.Module):
    """A convolution whose input channels are scaled per image by a style from w; with ``demodulate`` each
    output channel is then divided by its expected standard deviation, so unit-variance inputs give
    unit-variance outputs whatever the style (StyleGAN2's replacement for AdaIN).

    Implemented as scale input, shared convolution, scale output: the same function as convolving each
    image with its own modulated weights, without a grouped convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        w_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
    ) -> None:
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.demodulate = demodulate
        self.upsample = upsample

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.affine(w)
        weight = self.weight * self.weight_gain
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = F.conv2d(x * style[:, :, None, None], weight, padding=weight.shape[-1] // 2)
        if self.demodulate:
            # Output channel o of image b has variance sum_{i,k} (weight[o, i, k] * style[b, i])^2.
            variance = style.square() @ weight.square().sum(dim=(2, 3)).T
            x = x * torch.rsqrt(variance + 1e-8)[:, :, None, None]
        return x


class NoiseInput(nn.Module):
    """Per-pixel Gaussian noise, one map per image shared by all channels, times a learned strength.

    Training draws fresh noise; in eval mode a fixed map drawn at construction is used, so sampling is a
    function of z alone (StyleGAN2's ``noise_mode='const'``): grids of fixed latents are comparable.
    """

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("fixed", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], dtype=x.dtype, device=x.device)
        else:
            noise = self.fixed.to(x.dtype)
        return x + noise * self.strength


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv, noise, bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, upsample: bool) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, upsample=upsample)
        self.noise = NoiseInput(resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return leaky_relu_gained(self.noise(self.conv(x, w)) + self.bias[:, None, None])


class SynthesisBlock(nn.Module):
    """One resolution: (upsampling) synthesis layers, then a toRGB added to the upsampled image so far."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, channels: int) -> None:
        super().__init__()
        first = resolution == 4
        layers = [SynthesisLayer(in_channels, out_channels, w_dim, resolution, upsample=not first)]
        if not first:
            layers.append(SynthesisLayer(out_channels, out_channels, w_dim, resolution, upsample=False))
        self.layers = nn.ModuleList(layers)
        self.to_rgb = ModulatedConv2d(out_channels, channels, 1, w_dim, demodulate=False)
        self.rgb_bias = nn.Parameter(torch.zeros(channels))

    def forward(
        self, x: torch.Tensor, image: torch.Tensor | None, w: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for layer in self.layers:
            x = layer(x, w)
        rgb = self.to_rgb(x, w) + self.rgb_bias[:, None, None]
        if image is not None:
            rgb = rgb + F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False)
        return x, rgb


class StyleGANLiteGenerator(nn.Module):
    """Mapping network + synthesis from a 4x4 constant, ``width`` channels at every resolution; w has
    ``latent_dim`` dimensions like z. The summed toRGB outputs go through tanh into [-1, 1]."""

    def __init__(
        self, latent_dim: int = 128, img_size: int = 32, channels: int = 3, width: int = 128, mapping_layers: int = 2
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.mapping = MappingNetwork(latent_dim, mapping_layers)
        self.const = nn.Parameter(torch.randn(width, 4, 4))
        resolutions = [4 * 2**i for i in range(resnet_stages(img_size) + 1)]
        self.blocks = nn.ModuleList(SynthesisBlock(width, width, latent_dim, r, channels) for r in resolutions)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.synthesis(self.map_to_w(z), labels)

    def map_to_w(self, z: torch.Tensor) -> torch.Tensor:
        """B x latent_dim latents -> B x latent_dim w."""
        return self.mapping(z)

    def synthesis(self, w: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """B x latent_dim w -> B x C x H x W images in [-1, 1] (``labels`` ignored: unconditional)."""
        x, image = self.const.expand(w.shape[0], -1, -1, -1), None
        for block in self.blocks:
            x, image = block(x, image, w)
        return torch.tanh(image)
