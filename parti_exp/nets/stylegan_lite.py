"""A small StyleGAN2-style generator (Karras et al. 2020) for 16-64 px images.

z -> mapping MLP -> w, which modulates every convolution of a synthesis network that starts from a
learned 4x4 constant. Each resolution has modulated/demodulated 3x3 convs with per-pixel noise inputs
and a 1x1 "toRGB" whose outputs are upsampled and summed across resolutions (the skip architecture).
All layers use equalized learning rate: weights are stored at unit variance and scaled at run time.

``synthesis`` takes one w per image (B x w_dim, the W space) or one per modulated layer (B x num_ws x w_dim, W+).
As in StyleGAN2 a block's toRGB shares its w with the next block's first conv, so ``num_ws`` is the number of
convs plus one. Style mixing (``style_mixing_prob``) is a training-mode behaviour of ``styles``: with that
probability per batch, the layers from a crossover index drawn uniformly in [1, num_ws) on take the w of a
second latent. Path-length regularisation is G's penalty (``parti_exp.models.gan.regularizers.PathLengthPenalty``),
which differentiates ``synthesis`` with respect to ``styles``.

Truncation toward the mean w is the sampler's (``parti_exp.models.gan.truncation``), through ``map_to_w`` and
``synthesis``.
Left out for size: the blurred (FIR) resampling; upsampling is bilinear. The discriminator is the ResNet one
(``parti_exp.nets.resnet``) without spectral norm; R1 (``parti_exp.models.gan.regularizers.R1Penalty``) constrains it
instead.
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

    Training draws fresh noise; in eval mode the fixed map ``fixed`` is used (StyleGAN2's ``noise_mode='const'``),
    so sampling is a function of z alone: grids of fixed latents are comparable. The fixed maps are drawn from the
    generator's ``noise_seed`` and saved in the checkpoint. ``forward(x, noise)`` with a given map (1 or B x 1 x H
    x W) uses it instead, in either mode: the projector optimises such maps and stores them with the latent.
    """

    def __init__(self, resolution: int, rng: torch.Generator) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("fixed", torch.randn(1, 1, resolution, resolution, generator=rng))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None and self.training:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], dtype=x.dtype, device=x.device)
        elif noise is None:
            noise = self.fixed
        return x + noise.to(x.dtype) * self.strength


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv, noise (when the generator has noise inputs), bias, leaky ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, upsample: bool,
        noise_rng: torch.Generator | None,
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, upsample=upsample)
        self.noise = None if noise_rng is None else NoiseInput(resolution, noise_rng)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        x = self.conv(x, w)
        if self.noise is not None:
            x = self.noise(x, noise)
        return leaky_relu_gained(x + self.bias[:, None, None])


class SynthesisBlock(nn.Module):
    """One resolution: (upsampling) synthesis layers, then a toRGB added to the upsampled image so far."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, channels: int,
        noise_rng: torch.Generator | None,
    ) -> None:
        super().__init__()
        first = resolution == 4
        layers = [SynthesisLayer(in_channels, out_channels, w_dim, resolution, not first, noise_rng)]
        if not first:
            layers.append(SynthesisLayer(out_channels, out_channels, w_dim, resolution, False, noise_rng))
        self.layers = nn.ModuleList(layers)
        self.to_rgb = ModulatedConv2d(out_channels, channels, 1, w_dim, demodulate=False)
        self.rgb_bias = nn.Parameter(torch.zeros(channels))

    def forward(
        self, x: torch.Tensor, image: torch.Tensor | None, ws: torch.Tensor, noise: list[torch.Tensor | None]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``ws``: B x (len(layers) + 1) x w_dim, one per conv and the last for toRGB; ``noise``: one map (or None)
        per layer."""
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], noise[i])
        rgb = self.to_rgb(x, ws[:, -1]) + self.rgb_bias[:, None, None]
        if image is not None:
            rgb = rgb + F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False)
        return x, rgb


class StyleGANLiteGenerator(nn.Module):
    """Mapping network + synthesis from a 4x4 constant, ``width`` channels at every resolution; w has
    ``latent_dim`` dimensions like z. The summed toRGB outputs go through tanh into [-1, 1].

    ``style_mixing_prob``: the share of training batches whose later layers take a second latent's w (StyleGAN2:
    0.9; 0 = off). ``noise``: whether the convs have noise inputs (false = none at all, as StyleGAN2's
    ``use_noise=False``). ``noise_seed``: the seed of the fixed noise maps used in eval mode.
    """

    def __init__(
        self,
        latent_dim: int = 128,
        img_size: int = 32,
        channels: int = 3,
        width: int = 128,
        mapping_layers: int = 2,
        style_mixing_prob: float = 0.9,
        noise: bool = True,
        noise_seed: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 <= style_mixing_prob <= 1.0:
            raise ValueError(f"style_mixing_prob must be in [0, 1], got {style_mixing_prob}")
        self.latent_dim = latent_dim
        self.style_mixing_prob = style_mixing_prob
        self.mapping = MappingNetwork(latent_dim, mapping_layers)
        self.const = nn.Parameter(torch.randn(width, 4, 4))
        resolutions = [4 * 2**i for i in range(resnet_stages(img_size) + 1)]
        # Its own stream, so the fixed maps are a function of noise_seed and the other weights' initialisation
        # does not depend on whether the noise inputs exist.
        noise_rng = torch.Generator().manual_seed(noise_seed) if noise else None
        self.blocks = nn.ModuleList(
            SynthesisBlock(width, width, latent_dim, r, channels, noise_rng) for r in resolutions
        )
        self.num_ws = sum(len(block.layers) for block in self.blocks) + 1

    @property
    def noise_inputs(self) -> list[NoiseInput]:
        """The noise inputs in synthesis order (empty with ``noise=False``); ``synthesis(noise=...)`` takes one map
        per entry, of the shape of its ``fixed`` map."""
        return [layer.noise for block in self.blocks for layer in block.layers if layer.noise is not None]

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.synthesis(self.styles(z), labels)

    def map_to_w(self, z: torch.Tensor) -> torch.Tensor:
        """B x latent_dim latents -> B x latent_dim w."""
        return self.mapping(z)

    def styles(self, z: torch.Tensor) -> torch.Tensor:
        """B x num_ws x w_dim: z's w for every layer, style-mixed in training mode (see the module docstring)."""
        ws = self.map_to_w(z)[:, None].expand(-1, self.num_ws, -1)
        # Drawn on the CPU: a Python decision per batch, no device sync.
        if self.training and self.style_mixing_prob > 0 and torch.rand(()).item() < self.style_mixing_prob:
            crossover = int(torch.randint(1, self.num_ws, ()))
            mixed = self.map_to_w(torch.randn_like(z))[:, None].expand(-1, self.num_ws - crossover, -1)
            ws = torch.cat([ws[:, :crossover], mixed], dim=1)
        return ws

    def synthesis(
        self, w: torch.Tensor, labels: torch.Tensor | None = None, noise: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """w (B x latent_dim, or B x num_ws x latent_dim: one per layer) -> B x C x H x W images in [-1, 1]
        (``labels`` ignored: unconditional). ``noise``: one map per entry of ``noise_inputs`` in place of the
        drawn or fixed ones."""
        ws = w[:, None].expand(-1, self.num_ws, -1) if w.dim() == 2 else w
        if ws.shape[1] != self.num_ws:
            raise ValueError(f"w of shape {tuple(w.shape)}: this generator has {self.num_ws} layers of style")
        inputs = len(self.noise_inputs)
        if noise is not None and len(noise) != inputs:
            raise ValueError(f"{len(noise)} noise maps given: this generator has {inputs} noise inputs")
        maps = iter(noise if noise is not None else [None] * inputs)
        x, image, first = self.const.expand(ws.shape[0], -1, -1, -1), None, 0
        for block in self.blocks:
            count = len(block.layers)
            block_noise = [next(maps) if layer.noise is not None else None for layer in block.layers]
            x, image = block(x, image, ws[:, first : first + count + 1], block_noise)
            first += count
        return torch.tanh(image)
