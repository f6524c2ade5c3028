"""Stage 2 of text-to-image with masked tokens (``model=muse``; MaskGIT, Chang et al. 2022; Muse, Chang et al. 2023):
a bidirectional Transformer that predicts masked codes of the frozen tokenizer from the caption and every other code.

Training masks a share of each image's codes drawn from the cosine schedule (``masking.training_mask``) and scores
the cross-entropy on the masked positions only: a visible code is given, not predicted. Sampling fills a grid of
``[MASK]`` in ``sampling.steps`` parallel steps (``masked_sampling.sample_masked_tokens``); an edit starts from the
kept codes with ``[MASK]`` in the hole, so every drawn code sees the kept codes on all sides. Everything else
(frozen tokenizer, captions and condition dropout, checkpoint, sampling for prompts) is ``ImageTokenModule``'s, as for
``model=parti``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from parti_exp.models.text_to_image.masked_sampling import MaskedSamplingConfig, sample_masked_tokens
from parti_exp.models.text_to_image.masking import training_mask
from parti_exp.models.text_to_image.token_model import ImageTokenModule


class MaskedTextToImageModule(ImageTokenModule):
    sampling_settings = MaskedSamplingConfig
    loss_name = "masked_ce"

    def token_loss(self, ids: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        masked = training_mask(*tokens.shape).to(tokens.device)
        logits = self.transformer(ids, mask, tokens.masked_fill(masked, self.transformer.mask_id))
        return F.cross_entropy(logits[masked].float(), tokens[masked])

    def sample_tokens(self, ids, mask, null_ids, null_mask, sampling, generator, forced, keep) -> torch.Tensor:
        return sample_masked_tokens(self.transformer, ids, mask, null_ids, null_mask, sampling, generator, forced,
                                    keep)
