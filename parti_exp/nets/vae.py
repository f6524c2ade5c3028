"""A convolutional VAE's encoder and decoder (Kingma & Welling 2014) for any power-of-two size from 8 px up.

The encoder halves the resolution with strided convs (DCGAN's discriminator shape) down to 4x4 and maps to the mean
and log-variance of a diagonal Gaussian posterior; the decoder mirrors it (DCGAN's generator shape) and outputs
``params_per_channel`` maps per image channel, whose meaning the likelihood decides
(``parti_exp.models.vae.pixel_likelihood``).
No batch norm: an image's bound must not depend on the batch it is measured in.
"""

from __future__ import annotations

import torch
from torch import nn

from parti_exp.nets.dcgan import upsampling_stages
from parti_exp.runtime.validation import is_int_at_least, require


class ConvVAE(nn.Module):
    def __init__(
        self,
        img_size: int = 32,
        channels: int = 1,
        latent_dim: int = 32,
        width: int = 64,
        params_per_channel: int = 1,
    ) -> None:
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("width", width), ("params_per_channel", params_per_channel)):
            require(is_int_at_least(value, 1), f"model.net.{name}", f"must be a positive integer, got {value!r}")
        stages = upsampling_stages(img_size)
        self.latent_dim = latent_dim
        self.channels = channels
        widths = [width * 2**i for i in range(stages)]  # encoder: w, 2w, ... down to 4x4
        encoder: list[nn.Module] = []
        for c_in, c_out in zip([channels, *widths[:-1]], widths):
            encoder += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        self.encoder = nn.Sequential(*encoder, nn.Flatten())
        self.to_posterior = nn.Linear(widths[-1] * 16, 2 * latent_dim)

        self.from_latent = nn.Sequential(nn.Linear(latent_dim, widths[-1] * 16), nn.ReLU(inplace=True))
        decoder: list[nn.Module] = [nn.Unflatten(1, (widths[-1], 4, 4))]
        for c_in, c_out in zip(widths[::-1][:-1], widths[::-1][1:]):
            decoder += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.ReLU(inplace=True)]
        decoder.append(nn.ConvTranspose2d(widths[0], channels * params_per_channel, 4, 2, 1))
        self.decoder = nn.Sequential(*decoder)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``B x C x H x W`` images in [-1, 1] -> the posterior's mean and log-variance, ``B x latent_dim`` each."""
        mean, logvar = self.to_posterior(self.encoder(images)).chunk(2, dim=1)
        return mean, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``B x latent_dim`` latents -> ``B x params_per_channel*C x H x W`` likelihood parameters."""
        return self.decoder(self.from_latent(z))
