"""Iterative parallel decoding of image tokens (MaskGIT, Chang et al. 2022): every token in ``steps`` steps.

The grid starts as ``[MASK]`` wherever a token is to be drawn (everywhere when sampling; the hole when editing, the kept
codes elsewhere). Each step runs the model once over the whole grid and

1. draws a token at every masked position from the guided logits (temperature, then top-k and top-p as in Parti's
   sampler, ``filter_logits``), all positions at once;
2. scores each draw by its log-probability plus Gumbel noise scaled by ``choice_temperature * (1 - t / T)``
   (annealed: early choices are noisier, which keeps samples varied; the last step has none);
3. keeps the most confident draws and masks the others again, so that as many stay masked as the cosine schedule
   says (``parti_exp.models.text_to_image.masking``). A token once kept is never drawn again, and a kept code of an
   edit is never masked at all.

Classifier-free guidance is Parti's, ``uncond + scale * (cond - uncond)`` with the null caption, the two halves in one
batch; scale 1 is the conditional model and skips the unconditional half. ``guidance_schedule: linear`` raises the
scale from near 1 at the first step to ``guidance_scale`` at the last (Muse raises it over the steps: the first,
layout-setting steps stay diverse, the last ones follow the caption).

Every random draw (tokens, Gumbel noise) comes from the caller's generator: the same seed gives the same tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from parti_exp.models.text_to_image.masking import masked_after_steps
from parti_exp.models.text_to_image.sampling import check_filter, filter_logits, with_null_captions
from parti_exp.nets.masked_transformer import MaskedImageTransformer
from parti_exp.runtime.torch_utils import eval_mode
from parti_exp.runtime.validation import is_int_at_least, require

GUIDANCE_SCHEDULES = ("constant", "linear")


@dataclass
class MaskedSamplingConfig:
    steps: int = 12
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    guidance_scale: float = 1.0  # lambda: logits = uncond + lambda * (cond - uncond)
    guidance_schedule: str = "constant"  # linear: from about 1 at the first step to guidance_scale at the last
    choice_temperature: float = 4.5  # MaskGIT's: the Gumbel noise on the confidences, annealed to 0

    def __post_init__(self) -> None:
        require(is_int_at_least(self.steps, 1), "steps", f"must be an integer >= 1, got {self.steps!r}")
        require(self.temperature > 0, "temperature",
                f"must be > 0 (for greedy draws use top_k=1), got {self.temperature}")
        check_filter(self.top_k, self.top_p)
        require(math.isfinite(self.guidance_scale), "guidance_scale", f"must be finite, got {self.guidance_scale}")
        require(self.guidance_schedule in GUIDANCE_SCHEDULES, "guidance_schedule",
                f"must be one of {', '.join(GUIDANCE_SCHEDULES)}, got {self.guidance_schedule!r}")
        require(self.choice_temperature >= 0, "choice_temperature", f"must be >= 0, got {self.choice_temperature}")

    def scale_at(self, step: int) -> float:
        """The guidance scale of step ``step`` (0-based)."""
        if self.guidance_schedule == "constant":
            return self.guidance_scale
        return 1.0 + (self.guidance_scale - 1.0) * (step + 1) / self.steps


@torch.no_grad()
def sample_masked_tokens(
    model: MaskedImageTransformer,
    text_ids: torch.Tensor,
    text_mask: torch.Tensor,
    null_ids: torch.Tensor,
    null_mask: torch.Tensor,
    config: MaskedSamplingConfig,
    generator: torch.Generator | None = None,
    forced: torch.Tensor | None = None,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """``B x N`` image tokens for the captions ``(text_ids, text_mask)``, arguments as Parti's
    ``sample_image_tokens``: ``(null_ids, null_mask)`` is the null caption for guidance (``1 x L'`` or ``B x L'``,
    unused at scale 1); ``forced`` codes (``B x N``) are kept where ``keep`` (``B x N`` bool) is set and the other
    positions are drawn, seeing the kept codes on every side. The model runs in eval mode and is put back."""
    batch, n = text_ids.shape[0], model.num_image_tokens
    if (forced is None) != (keep is None):
        raise ValueError("forced and keep go together: give both or neither")
    if keep is not None and not (forced.shape == keep.shape == (batch, n)):
        raise ValueError(f"forced and keep must be {batch} x {n}, got {tuple(forced.shape)} and {tuple(keep.shape)}")
    device = text_ids.device
    if keep is None:
        keep = torch.zeros(batch, n, dtype=torch.bool, device=device)
        forced = torch.zeros(batch, n, dtype=torch.long, device=device)
    # Read once, so the loop below never waits on the device to learn how many tokens remain.
    to_fill = (~keep).sum(dim=1).tolist()
    if not any(to_fill):
        return forced.clone()
    remaining = masked_after_steps(to_fill, config.steps).to(device)  # steps x B
    guided = config.guidance_scale != 1
    if guided:
        text_ids, text_mask = with_null_captions(text_ids, text_mask, null_ids, null_mask)

    with eval_mode(model):
        cross = model.cross_keys_values(model.encode_text(text_ids, text_mask))
        tokens = torch.where(keep, forced, model.mask_id)
        for step in range(config.steps):
            unknown = tokens == model.mask_id
            logits = model.predict(torch.cat([tokens, tokens]) if guided else tokens, cross, text_mask).float()
            if guided:
                cond, uncond = logits.chunk(2)
                logits = uncond + config.scale_at(step) * (cond - uncond)
            log_probs = filter_logits(logits / config.temperature, config.top_k, config.top_p).log_softmax(dim=-1)
            drawn = torch.multinomial(log_probs.exp().flatten(0, 1), 1, generator=generator).view(batch, n)
            tokens = torch.where(unknown, drawn, tokens)
            confidence = log_probs.gather(-1, tokens[..., None])[..., 0]
            noise = config.choice_temperature * (1 - (step + 1) / config.steps)
            if noise > 0:
                exponential = torch.empty_like(confidence).exponential_(generator=generator)
                confidence = confidence - noise * exponential.clamp_min(torch.finfo(confidence.dtype).tiny).log()
            # Known tokens (kept or revealed before) are never masked again; of the draws, the least confident go.
            confidence = confidence.masked_fill(~unknown, math.inf)
            ranks = confidence.argsort(dim=1, stable=True).argsort(dim=1)
            tokens = tokens.masked_fill(ranks < remaining[step][:, None], model.mask_id)
    return tokens
