"""Stage 1 of Parti: a convolutional VQGAN (Esser et al. 2021) that turns an image into a grid of codebook
tokens and back; the PatchGAN discriminator that sharpens its reconstructions is ``parti_exp.nets.patchgan``'s.

The Transformer of stage 2 only ever sees the token grid, so the autoencoder's downsampling factor sets the
sequence length (32 px with two x2 stages: 8 x 8 = 64 tokens). The quantiser between encoder and decoder is
the factorised, l2-normalised one of ViT-VQGAN (``parti_exp.nets.quantizer``). All normalisation is
GroupNorm, which works per sample: reconstructions do not depend on the batch, and the discriminator's
per-sample outputs keep R1 and gradient penalties well defined.
"""

from __future__ import annotations

import torch
from torch import nn

from parti_exp.nets.patchgan import group_norm
from parti_exp.nets.quantizer import FactorizedQuantizer, Quantized
from parti_exp.runtime.validation import require


class ResBlock(nn.Module):
    """Pre-activation residual block: (GroupNorm, SiLU, 3x3 conv) twice plus a (1x1 if needed) skip."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            group_norm(c_in),
            nn.SiLU(),
            nn.Conv2d(c_in, c_out, 3, padding=1),
            group_norm(c_out),
            nn.SiLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1),
        )
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class VQGANAutoencoder(nn.Module):
    """Conv encoder -> ``FactorizedQuantizer`` -> mirrored conv decoder -> tanh image in [-1, 1].

    The encoder doubles the width at each of its ``downsamples`` stride-2 stages; the features handed to
    the quantiser have the deepest width (``width * 2**downsamples``). The decoder upsamples with nearest
    neighbour + 3x3 conv rather than transposed convs, which avoid checkerboard artefacts.
    """

    def __init__(
        self,
        img_size: int = 32,
        channels: int = 1,
        width: int = 64,
        downsamples: int = 2,
        codebook_size: int = 512,
        code_dim: int = 8,
        beta: float = 0.25,
        dead_code_threshold: float = 0.0,
        res_blocks: int = 1,
    ) -> None:
        super().__init__()
        factor = 2**downsamples
        require(downsamples >= 0 and img_size >= factor and img_size % factor == 0, "the VQGAN",
                f"downsamples the image {downsamples} times by 2, so data.img_size must be a positive multiple of "
                f"2**downsamples = {factor}; got data.img_size={img_size}, model.generator.downsamples={downsamples}")
        widths = [width * 2**i for i in range(downsamples + 1)]
        dim = widths[-1]
        self.token_grid: tuple[int, int] = (img_size // factor, img_size // factor)
        self.codebook_size = codebook_size

        encoder: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, padding=1)]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            encoder += [ResBlock(c_in, c_in) for _ in range(res_blocks)]
            encoder.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))
        encoder += [ResBlock(dim, dim) for _ in range(res_blocks)]
        encoder += [group_norm(dim), nn.SiLU(), nn.Conv2d(dim, dim, 1)]
        self.encoder = nn.Sequential(*encoder)

        self.quantizer = FactorizedQuantizer(
            dim, codebook_size, code_dim=code_dim, beta=beta, dead_code_threshold=dead_code_threshold
        )

        decoder: list[nn.Module] = [nn.Conv2d(dim, dim, 3, padding=1)]
        decoder += [ResBlock(dim, dim) for _ in range(res_blocks)]
        for c_in, c_out in zip(widths[:0:-1], widths[-2::-1]):
            decoder += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1)]
            decoder += [ResBlock(c_out, c_out) for _ in range(res_blocks)]
        decoder += [group_norm(widths[0]), nn.SiLU(), nn.Conv2d(widths[0], channels, 3, padding=1), nn.Tanh()]
        self.decoder = nn.Sequential(*decoder)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, Quantized]:
        """Reconstruction in [-1, 1] and the quantiser's output (tokens, commitment loss, code statistics)."""
        q = self.quantizer(self.encoder(images))
        return self.decoder(q.quantized), q

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images -> B x h x w token ids."""
        return self.quantizer(self.encoder(images)).indices

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """B x h x w token ids -> images in [-1, 1]."""
        return self.decoder(self.quantizer.indices_to_features(indices))
