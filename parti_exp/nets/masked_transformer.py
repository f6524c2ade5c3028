"""Masked-token Transformer from a caption to image tokens (MaskGIT, Chang et al. 2022; Muse, Chang et al. 2023).

The caption is read by the same bidirectional text encoder as Parti's (``TextEncoder``). The image side sees the whole
token grid at once: every position holds either a code of the frozen image tokenizer or the extra ``[MASK]`` token
(id ``codebook_size``), attends to every other position (bidirectional self-attention) and to the caption
(cross-attention), and the head predicts, at every position, a distribution over the codebook. Training masks a share
of the positions and scores the masked ones; sampling starts from a grid of ``[MASK]`` and fills it in a few parallel
steps (``parti_exp.models.text_to_image.masked_sampling``), and an edit starts from the kept codes with ``[MASK]``
in the hole, so the tokens below and right of it are seen as well as those above and left.

Positions carry Parti's learned row and column embeddings. There is no BOS and no cache: each step re-reads the whole
grid, whose tokens change between steps; the caption's cross-attention keys and values are computed once per
sampling call (``cross_keys_values``).
"""

from __future__ import annotations

import torch
from torch import nn

from parti_exp.nets.transformer import (
    DecoderBlock,
    TextEncoder,
    check_sizes,
    checked_grid,
    grid_positions,
    init_small,
    key_padding_mask,
)

CrossKV = list[tuple[torch.Tensor, torch.Tensor]]


class MaskedImageTransformer(TextEncoder):
    """Caption ``(text_ids, text_mask)`` and ``B x N`` image tokens, ``[MASK]`` (``mask_id``) where unknown ->
    ``B x N x codebook_size`` logits of the code at every position."""

    def __init__(
        self,
        text_vocab_size: int,
        codebook_size: int,
        token_grid: tuple[int, int] = (8, 8),
        max_text_len: int = 16,
        dim: int = 256,
        encoder_depth: int = 2,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        owner = type(self).__name__
        check_sizes(owner, {"codebook_size": codebook_size, "encoder_depth": encoder_depth, "depth": depth})
        super().__init__(text_vocab_size, max_text_len, dim, encoder_depth, heads, mlp_ratio, dropout)
        self.codebook_size = codebook_size
        self.mask_id = codebook_size  # one embedding row more than the codebook; never predicted
        self.token_grid = checked_grid(owner, token_grid)
        self.num_image_tokens = self.token_grid[0] * self.token_grid[1]

        self.image_embed = nn.Embedding(codebook_size + 1, dim)
        self.row_pos = nn.Embedding(self.token_grid[0], dim)
        self.col_pos = nn.Embedding(self.token_grid[1], dim)
        self.blocks = nn.ModuleList(
            DecoderBlock(dim, heads, mlp_ratio, dropout, causal=False) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, codebook_size)
        init_small(self)

    def cross_keys_values(self, memory: torch.Tensor) -> CrossKV:
        """Each block's cross-attention keys and values of ``encode_text``'s output: computed once per sampling call,
        reused at every step."""
        return [block.cross_attn.keys_values(memory) for block in self.blocks]

    def predict(self, tokens: torch.Tensor, cross: CrossKV, text_mask: torch.Tensor) -> torch.Tensor:
        """``B x N x codebook_size`` logits for the ``B x N`` tokens (``mask_id`` where unknown), given the caption's
        ``cross_keys_values`` and its ``text_mask``."""
        x = self.drop(self.image_embed(tokens) + grid_positions(self.row_pos, self.col_pos))
        padding = key_padding_mask(text_mask)
        for block, kv in zip(self.blocks, cross):
            x = block(x, kv, padding)
        return self.head(self.norm(x))

    def forward(self, text_ids: torch.Tensor, text_mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``B x N x codebook_size`` logits of every position of ``tokens`` (``B x N``, ``mask_id`` where masked)."""
        memory = self.encode_text(text_ids, text_mask)
        return self.predict(tokens, self.cross_keys_values(memory), text_mask)
