"""Encoder-decoder Transformer from a caption to a sequence of image tokens (Parti, Yu et al. 2022).

The encoder reads the caption with bidirectional self-attention; the decoder predicts the VQGAN codes of the
image in raster order, each token attending causally to the tokens before it and, through cross-attention, to
the encoded caption. Image positions get a learned row embedding plus a learned column embedding, so the
decoder knows where a token lies on the 2-D grid rather than only its index in the sequence.

Sampling produces one token per step. Without a cache every new token re-runs the decoder over the whole
prefix, O(N^2) token passes per image of N tokens; ``decode_step`` instead keeps each layer's self-attention
keys and values of the tokens decoded so far in a ``KVCache`` and projects only the new token, O(N) passes.
The cross-attention keys and values depend only on the caption, so they are computed once per image and kept
in the cache too. ``logits_uncached`` is the slow path, kept as the reference that the cache must reproduce.

All attention goes through ``torch.nn.functional.scaled_dot_product_attention``, which picks a fused kernel
where one exists for the device and dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from parti_exp.runtime.validation import require


class KVCache:
    """Per decoder layer: the self-attention keys/values of the positions decoded so far, and the
    cross-attention keys/values of the encoded caption.

    Self-attention buffers are allocated on the first step with the projection's dtype and device (bf16 under
    autocast), sized for a whole image, so each step writes one position instead of concatenating.
    """

    def __init__(self, batch: int, num_layers: int, capacity: int) -> None:
        self.batch = batch
        self.capacity = capacity
        self.length = 0
        self._keys: list[torch.Tensor | None] = [None] * num_layers
        self._values: list[torch.Tensor | None] = [None] * num_layers
        self.cross: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def append(self, layer: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store one position's ``B x H x 1 x d`` key and value at ``self.length``; return the keys and values of
        positions ``0..length`` inclusive."""
        if self._keys[layer] is None:
            shape = (key.shape[0], key.shape[1], self.capacity, key.shape[3])
            self._keys[layer] = key.new_empty(shape)
            self._values[layer] = value.new_empty(shape)
        keys, values = self._keys[layer], self._values[layer]
        keys[:, :, self.length] = key[:, :, 0]
        values[:, :, self.length] = value[:, :, 0]
        return keys[:, :, : self.length + 1], values[:, :, : self.length + 1]


class Attention(nn.Module):
    """Multi-head attention whose keys and values can be projected separately, so a cache can keep them."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key, value = self.to_kv(x).chunk(2, dim=-1)
        return self.split_heads(key), self.split_heads(value)

    def attend(
        self,
        x: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        query = self.split_heads(self.to_q(x))
        out = F.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=is_causal,
        )
        b, h, t, d = out.shape
        return self.out(out.transpose(1, 2).reshape(b, t, h * d))


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, mlp_ratio: float, dropout: float) -> None:
        hidden = int(dim * mlp_ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim), nn.Dropout(dropout))


def key_padding_mask(text_mask: torch.Tensor) -> torch.Tensor:
    """``B x L`` (True at real tokens) -> ``B x 1 x 1 x L``, broadcast over heads and queries."""
    return text_mask[:, None, None, :]


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_ratio, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        h = self.norm_attn(x)
        x = x + self.drop(self.attn.attend(h, *self.attn.keys_values(h), attn_mask=padding))
        return x + self.mlp(self.norm_mlp(x))


class DecoderBlock(nn.Module):
    """Self-attention over the image tokens, cross-attention to the encoded caption, MLP; pre-norm residuals. The
    self-attention is causal in Parti's decoder and bidirectional in the masked-token model
    (``parti_exp.nets.masked_transformer``), which shares the block."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float, causal: bool = True) -> None:
        super().__init__()
        self.causal = causal
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads, dropout)
        self.norm_cross = nn.LayerNorm(dim)
        self.cross_attn = Attention(dim, heads, dropout)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_ratio, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        cross_kv: tuple[torch.Tensor, torch.Tensor],
        padding: torch.Tensor,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> torch.Tensor:
        """Without ``cache``, ``x`` is the whole sequence, attended causally (or every position to every other in a
        bidirectional block). With it, ``x`` is the newest position alone: its key and value join the cache, and
        every cached position is in its past."""
        h = self.norm_self(x)
        key, value = self.self_attn.keys_values(h)
        if cache is None:
            x = x + self.drop(self.self_attn.attend(h, key, value, is_causal=self.causal))
        else:
            x = x + self.drop(self.self_attn.attend(h, *cache.append(layer, key, value)))
        x = x + self.drop(self.cross_attn.attend(self.norm_cross(x), *cross_kv, attn_mask=padding))
        return x + self.mlp(self.norm_mlp(x))


def check_sizes(owner: str, positive: dict[str, float]) -> None:
    for name, value in positive.items():
        require(value > 0, f"{owner}: {name}", f"must be > 0, got {value}")


def checked_grid(owner: str, token_grid: tuple[int, int]) -> tuple[int, int]:
    require(len(token_grid) == 2 and min(token_grid) > 0, f"{owner}: token_grid",
            f"must be (h, w) with h, w > 0, got {token_grid}")
    return int(token_grid[0]), int(token_grid[1])


def init_small(net: nn.Module) -> None:
    """Small weights keep the residual stream near its embeddings at the start, so early logits are near uniform and
    the first steps of training are stable."""
    for module in net.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


def grid_positions(row_pos: nn.Embedding, col_pos: nn.Embedding) -> torch.Tensor:
    """``(h * w) x dim``: row embedding + column embedding of each raster position of an ``h x w`` token grid."""
    rows, cols = row_pos.weight, col_pos.weight
    return (rows[:, None, :] + cols[None, :, :]).reshape(len(rows) * len(cols), -1)


class TextEncoder(nn.Module):
    """Caption ``(text_ids, text_mask)`` -> ``B x L x dim`` states, bidirectional self-attention over the tokens.

    Parti's encoder (``TextToImageTransformer`` is one, with a decoder on top) and the text tower of the contrastive
    scorer (``parti_exp.nets.dual_encoder``)."""

    def __init__(
        self,
        text_vocab_size: int,
        max_text_len: int = 16,
        dim: int = 256,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        sizes = {"text_vocab_size": text_vocab_size, "max_text_len": max_text_len, "dim": dim, "depth": depth,
                 "heads": heads, "mlp_ratio": mlp_ratio}
        check_sizes(owner, sizes)
        require(dim % heads == 0, f"{owner}: dim ({dim})", f"must be divisible by heads ({heads})")
        require(0.0 <= dropout < 1.0, f"{owner}: dropout", f"must be in [0, 1), got {dropout}")
        self.dim = dim
        self.max_text_len = max_text_len
        self.text_embed = nn.Embedding(text_vocab_size, dim)
        self.text_pos = nn.Embedding(max_text_len, dim)
        self.encoder = nn.ModuleList(EncoderBlock(dim, heads, mlp_ratio, dropout) for _ in range(depth))
        self.encoder_norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def encode_text(self, text_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """``B x L x dim`` states; positions where ``text_mask`` is False are never attended to, so trailing padding
        changes nothing. Every row needs at least one True (the text tokenizer guarantees it; a fully masked row
        would make every attention to it NaN)."""
        positions = torch.arange(text_ids.shape[1], device=text_ids.device)
        x = self.drop(self.text_embed(text_ids) + self.text_pos(positions))
        padding = key_padding_mask(text_mask)
        for block in self.encoder:
            x = block(x, padding)
        return self.encoder_norm(x)


# A subclass rather than an attribute holding a TextEncoder: the encoder's weights keep the state-dict keys
# (text_embed, encoder.0..., encoder_norm) of the checkpoints written before the contrastive scorer shared it.
class TextToImageTransformer(TextEncoder):
    """Caption ``(text_ids, text_mask)`` -> logits over the codebook for each image token in raster order."""

    def __init__(
        self,
        text_vocab_size: int,
        codebook_size: int,
        token_grid: tuple[int, int] = (8, 8),
        max_text_len: int = 16,
        dim: int = 256,
        encoder_depth: int = 2,
        decoder_depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        check_sizes(type(self).__name__, {"codebook_size": codebook_size, "encoder_depth": encoder_depth,
                                          "decoder_depth": decoder_depth})
        super().__init__(text_vocab_size, max_text_len, dim, encoder_depth, heads, mlp_ratio, dropout)
        self.codebook_size = codebook_size
        self.token_grid = checked_grid(type(self).__name__, token_grid)
        self.num_image_tokens = self.token_grid[0] * self.token_grid[1]

        self.image_embed = nn.Embedding(codebook_size, dim)
        self.row_pos = nn.Embedding(self.token_grid[0], dim)
        self.col_pos = nn.Embedding(self.token_grid[1], dim)
        self.bos = nn.Parameter(torch.zeros(dim))
        self.decoder = nn.ModuleList(DecoderBlock(dim, heads, mlp_ratio, dropout) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, codebook_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_small(self)
        nn.init.normal_(self.bos, std=0.02)

    def decoder_inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[BOS] + tokens`` embedded, ``B x (t + 1) x dim``. Input ``i`` carries the position embedding of
        the token it predicts (position ``i``), so the decoder knows where on the grid the next token lies."""
        bos = self.bos.expand(tokens.shape[0], 1, -1)
        x = torch.cat([bos, self.image_embed(tokens)], dim=1)
        return self.drop(x + grid_positions(self.row_pos, self.col_pos)[: x.shape[1]])

    def decode(self, x: torch.Tensor, memory: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """Causal decoder over the whole embedded sequence ``x``; returns the normed hidden states."""
        padding = key_padding_mask(text_mask)
        for block in self.decoder:
            x = block(x, block.cross_attn.keys_values(memory), padding)
        return self.decoder_norm(x)

    def forward(self, text_ids: torch.Tensor, text_mask: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: ``B x N x codebook_size`` logits, ``logits[:, t]`` predicting ``image_tokens[:, t]``
        from the caption and ``image_tokens[:, :t]`` (``B x N``)."""
        memory = self.encode_text(text_ids, text_mask)
        return self.head(self.decode(self.decoder_inputs(image_tokens[:, :-1]), memory, text_mask))

    def logits_uncached(
        self, text_ids: torch.Tensor, text_mask: torch.Tensor, prefix_tokens: torch.Tensor
    ) -> torch.Tensor:
        """``B x codebook_size`` logits of the token after ``prefix_tokens`` (``B x t``, ``t < N``), re-running
        the encoder and the whole decoder: what sampling costs without a cache."""
        memory = self.encode_text(text_ids, text_mask)
        hidden = self.decode(self.decoder_inputs(prefix_tokens), memory, text_mask)
        return self.head(hidden[:, -1])

    def new_cache(self, batch: int) -> KVCache:
        """An empty cache for sampling ``batch`` images with ``decode_step``."""
        return KVCache(batch, len(self.decoder), self.num_image_tokens)

    def decode_step(
        self, token: torch.Tensor | None, memory: torch.Tensor, text_mask: torch.Tensor, cache: KVCache
    ) -> torch.Tensor:
        """Feed one decoder input and return the ``B x codebook_size`` logits of position ``cache.length``.

        ``token`` is None at position 0 (the input is BOS), else the ``B`` tokens sampled at the previous
        position. ``memory`` is ``encode_text``'s output for the same captions.
        """
        position = cache.length
        if position >= cache.capacity:
            raise ValueError(f"the cache is full: all {cache.capacity} image tokens have been decoded")
        if (token is None) != (position == 0):
            raise ValueError(
                f"decode_step takes token=None exactly at position 0 (BOS); at position {position} got "
                f"{'None' if token is None else 'a token'}"
            )
        if token is None:
            x = self.bos.expand(cache.batch, 1, -1)
        else:
            x = self.image_embed(token)[:, None, :]
        w = self.token_grid[1]
        x = self.drop(x + self.row_pos.weight[position // w] + self.col_pos.weight[position % w])
        if cache.cross is None:
            cache.cross = [block.cross_attn.keys_values(memory) for block in self.decoder]
        padding = key_padding_mask(text_mask)
        for layer, block in enumerate(self.decoder):
            x = block(x, cache.cross[layer], padding, cache, layer)
        cache.length += 1
        return self.head(self.decoder_norm(x[:, 0]))
