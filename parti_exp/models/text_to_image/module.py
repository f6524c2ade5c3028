"""Stage 2 of text-to-image, Parti's way (``model=parti``): an encoder-decoder Transformer that predicts the frozen
tokenizer's codes in raster order, each from the caption and the codes before it.

Training is cross-entropy with teacher forcing on every code; sampling draws one code per step with the KV cache
(``sampling.sample_image_tokens``), and an edit forces the kept codes and draws the others, each seeing the kept
codes before it in raster order only. What both decoders share (the frozen tokenizer, captions and condition dropout,
sampling images for prompts, the checkpoint): ``ImageTokenModule``; the masked-token decoder: ``muse.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from parti_exp.models.text_to_image.sampling import SamplingConfig, sample_image_tokens
from parti_exp.models.text_to_image.token_model import ImageTokenModule


class TextToImageModule(ImageTokenModule):
    sampling_settings = SamplingConfig
    loss_name = "ce"

    def token_loss(self, ids: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        logits = self.transformer(ids, mask, tokens)
        return F.cross_entropy(logits.flatten(0, 1).float(), tokens.flatten())

    def sample_tokens(self, ids, mask, null_ids, null_mask, sampling, generator, forced, keep) -> torch.Tensor:
        return sample_image_tokens(self.transformer, ids, mask, null_ids, null_mask, sampling, generator, forced, keep)
