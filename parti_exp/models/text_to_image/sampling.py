"""Autoregressive sampling of image tokens from a caption, with temperature, top-k/top-p filtering and
classifier-free guidance.

Classifier-free guidance (Ho & Salimans 2022; used by Parti) pushes each step's logits away from what the
model predicts for the null caption: ``uncond + scale * (cond - uncond)``. Scale 1 is plain conditional
sampling, 0 ignores the caption, and values above 1 trade diversity for agreement with the caption. The
conditional and unconditional passes run as one batch of 2B so the model is called once per step; at scale 1
the unconditional half would be multiplied by zero, so it is not computed at all.

Temperature and filtering act on the guided logits: temperature first, then top-k, then the nucleus (top-p)
of what is left, as is usual for language models. Greedy decoding is ``top_k=1``: a temperature of 0 would
divide by zero.

Each step draws from ``torch.multinomial`` with the caller's generator, the same draw with or without the
KV cache, so the two paths give the same tokens for the same generator.

Editing (inpainting) is the same loop with some tokens forced: where ``keep`` is set, the step takes the given
token instead of a sample and feeds it on, so every sampled token is conditioned on the caption and on all tokens
before it in raster order, kept or sampled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from parti_exp.nets.transformer import TextToImageTransformer
from parti_exp.runtime.torch_utils import eval_mode
from parti_exp.runtime.validation import require


@dataclass
class SamplingConfig:
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    guidance_scale: float = 1.0  # lambda: logits = uncond + lambda * (cond - uncond)
    use_cache: bool = True

    def __post_init__(self) -> None:
        require(self.temperature > 0, "temperature",
                f"must be > 0 (for greedy decoding use top_k=1), got {self.temperature}")
        check_filter(self.top_k, self.top_p)
        require(math.isfinite(self.guidance_scale), "guidance_scale", f"must be finite, got {self.guidance_scale}")


def check_filter(top_k: int | None, top_p: float | None) -> None:
    require(top_k is None or top_k >= 1, "top_k", f"must be >= 1 or None, got {top_k}")
    require(top_p is None or 0 < top_p <= 1, "top_p", f"must be in (0, 1] or None, got {top_p}")


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """``logits`` (``... x V``) with the excluded entries set to -inf: first all but the ``top_k`` largest, then
    all outside the nucleus, the smallest set of most likely tokens whose probability reaches ``top_p``."""
    check_filter(top_k, top_p)
    if top_k is not None and top_k < logits.shape[-1]:
        kth_largest = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # A token stays if the more likely tokens before it have not yet reached top_p; the most likely
        # token always stays.
        mass_before = probs.cumsum(dim=-1) - probs
        drop_sorted = mass_before >= top_p
        drop_sorted[..., 0] = False
        logits = logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
    return logits


def pad_to_length(ids: torch.Tensor, mask: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad with id 0 / mask False, which the model ignores, so captions of different lengths batch."""
    extra = length - ids.shape[1]
    return F.pad(ids, (0, extra), value=0), F.pad(mask, (0, extra), value=False)


def with_null_captions(
    text_ids: torch.Tensor, text_mask: torch.Tensor, null_ids: torch.Tensor, null_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``B`` captions followed by ``B`` null captions, padded to one length: classifier-free guidance runs the
    conditional and the unconditional model as one batch."""
    batch = text_ids.shape[0]
    if null_ids.shape[0] not in (1, batch) or null_mask.shape != null_ids.shape:
        raise ValueError(
            f"null_ids/null_mask must be 1 x L or {batch} x L and match, got {tuple(null_ids.shape)} and "
            f"{tuple(null_mask.shape)}"
        )
    length = max(text_ids.shape[1], null_ids.shape[1])
    text_ids, text_mask = pad_to_length(text_ids, text_mask, length)
    null_ids, null_mask = pad_to_length(null_ids.expand(batch, -1), null_mask.expand(batch, -1), length)
    return torch.cat([text_ids, null_ids]), torch.cat([text_mask, null_mask])


@torch.no_grad()
def sample_image_tokens(
    model: TextToImageTransformer,
    text_ids: torch.Tensor,
    text_mask: torch.Tensor,
    null_ids: torch.Tensor,
    null_mask: torch.Tensor,
    config: SamplingConfig,
    generator: torch.Generator | None = None,
    forced: torch.Tensor | None = None,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """``B x N`` image tokens for the captions ``(text_ids, text_mask)``.

    ``(null_ids, null_mask)`` is the null caption for guidance, ``1 x L'`` (shared) or ``B x L'``; it is not
    used when ``config.guidance_scale == 1``. ``forced`` (``B x N`` tokens) and ``keep`` (``B x N`` bool) go
    together: ``tokens[keep] == forced[keep]``, and only the other positions are sampled. The model runs in eval
    mode (no dropout) and is put back in its previous mode afterwards.
    """
    batch = text_ids.shape[0]
    if (forced is None) != (keep is None):
        raise ValueError("forced and keep go together: give both or neither")
    if keep is not None and not (forced.shape == keep.shape == (batch, model.num_image_tokens)):
        raise ValueError(f"forced and keep must be {batch} x {model.num_image_tokens}, got {tuple(forced.shape)} "
                         f"and {tuple(keep.shape)}")
    # Positions every row keeps need no draw (read once: a per-step test would sync with the device each step).
    all_kept = keep.all(dim=0).tolist() if keep is not None else [False] * model.num_image_tokens
    guided = config.guidance_scale != 1
    if guided:
        text_ids, text_mask = with_null_captions(text_ids, text_mask, null_ids, null_mask)

    def choose(logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if guided:
            cond, uncond = logits.chunk(2)
            logits = uncond + config.guidance_scale * (cond - uncond)
        logits = filter_logits(logits / config.temperature, config.top_k, config.top_p)
        return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)[:, 0]

    def next_token(t: int, logits: torch.Tensor) -> torch.Tensor:
        if keep is None:
            return choose(logits)
        return torch.where(keep[:, t], forced[:, t], choose(logits))

    with eval_mode(model):
        tokens = torch.empty(batch, model.num_image_tokens, dtype=torch.long, device=text_ids.device)
        if config.use_cache:
            memory = model.encode_text(text_ids, text_mask)
            cache = model.new_cache(text_ids.shape[0])
            token = None
            for t in range(model.num_image_tokens):
                # A kept position still goes through the decoder: its input (the token before) joins the cache.
                logits = model.decode_step(token, memory, text_mask, cache)
                tokens[:, t] = forced[:, t] if all_kept[t] else next_token(t, logits)
                # Both halves of a guided batch continue from the same sampled token.
                token = torch.cat([tokens[:, t], tokens[:, t]]) if guided else tokens[:, t]
        else:
            for t in range(model.num_image_tokens):
                if all_kept[t]:
                    tokens[:, t] = forced[:, t]
                    continue
                prefix = torch.cat([tokens[:, :t], tokens[:, :t]]) if guided else tokens[:, :t]
                tokens[:, t] = next_token(t, model.logits_uncached(text_ids, text_mask, prefix))
    return tokens
