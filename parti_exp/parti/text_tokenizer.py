"""A word-level text tokenizer for captions made from labels.

Those captions use a few dozen words, all known in advance (``Captioner.vocabulary()``), so one id per word is
exact and tiny; a subword tokenizer would only add a dependency and longer sequences. Texts are padded to a fixed
length so a batch is one tensor, with a mask marking the real tokens for the text encoder's attention.

Ids 0, 1 and 2 are special: ``<pad>`` fills the positions after the caption, ``<unk>`` stands for a word outside
the vocabulary (a user prompt may have one), and ``<null>`` is the empty caption that classifier-free guidance
trains and samples with.

The tokenizer is plain data (its words and length), so a checkpoint can store it with ``state_dict()`` and a
sampler rebuild the same ids from it without the dataset.
"""

from __future__ import annotations

from typing import Any

import torch


class WordTokenizer:
    """Words to ids, padded to ``max_len`` tokens; ids 0-2 are the special tokens, words follow in order."""

    PAD, UNK, NULL = "<pad>", "<unk>", "<null>"
    PAD_ID, UNK_ID, NULL_ID = 0, 1, 2
    SPECIALS = (PAD, UNK, NULL)

    def __init__(self, words: list[str], max_len: int = 16) -> None:
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
            raise ValueError(f"max_len must be an integer of at least 1, got {max_len!r}")
        seen: set[str] = set()
        for word in words:
            if not isinstance(word, str) or not word:
                raise ValueError(f"words must be non-empty strings, got {word!r}")
            if any(character.isspace() for character in word):
                raise ValueError(f"a word cannot contain whitespace, got {word!r}")
            # Texts are lower-cased before lookup, so a word with capitals could never be found.
            if word != word.lower():
                raise ValueError(f"words must be lower case, got {word!r}")
            if word in seen or word in self.SPECIALS:
                raise ValueError(
                    f"duplicate word {word!r} (the special tokens {', '.join(self.SPECIALS)} are built in)"
                )
            seen.add(word)
        self.max_len = max_len
        self._tokens = [*self.SPECIALS, *words]
        self._ids = {token: index for index, token in enumerate(self._tokens)}

    @classmethod
    def from_captioner(cls, captioner: Any, max_len: int = 16) -> WordTokenizer:
        """The tokenizer of every word ``captioner`` can write."""
        return cls(captioner.vocabulary(), max_len)

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    def encode(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> (ids, mask): int64 and bool ``B x max_len``, the mask True at the caption's tokens.

        Captions are lower-cased and split on whitespace; a word outside the vocabulary becomes ``<unk>``.
        """
        ids = torch.full((len(captions), self.max_len), self.PAD_ID, dtype=torch.int64)
        mask = torch.zeros((len(captions), self.max_len), dtype=torch.bool)
        for row, caption in enumerate(captions):
            words = caption.lower().split()
            if not words:
                # An all-False mask leaves the encoder's attention nothing to attend to.
                raise ValueError(f"caption {caption!r} has no words; the empty caption is null(), not ''")
            if len(words) > self.max_len:
                raise ValueError(
                    f"caption {caption!r} has {len(words)} words, more than the text length {self.max_len}; "
                    f"shorten it or raise model.max_text_len"
                )
            ids[row, : len(words)] = torch.tensor([self._ids.get(word, self.UNK_ID) for word in words])
            mask[row, : len(words)] = True
        return ids, mask

    def null(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch`` copies of the null caption: ``<null>`` then padding, the mask True only at position 0."""
        ids = torch.full((batch, self.max_len), self.PAD_ID, dtype=torch.int64)
        mask = torch.zeros((batch, self.max_len), dtype=torch.bool)
        ids[:, 0] = self.NULL_ID
        mask[:, 0] = True
        return ids, mask

    def decode(self, ids: torch.Tensor) -> list[str]:
        """``B x L`` ids -> one string per row, without ``<pad>`` and ``<null>``; unknown words read ``<unk>``."""
        if ids.ndim != 2:
            raise ValueError(f"expected ids of shape batch x length, got shape {tuple(ids.shape)}")
        rows = ids.tolist()
        out_of_range = [index for row in rows for index in row if not 0 <= index < self.vocab_size]
        if out_of_range:
            raise ValueError(f"ids must be in 0..{self.vocab_size - 1}, got {out_of_range[0]}")
        dropped = (self.PAD_ID, self.NULL_ID)
        return [" ".join(self._tokens[index] for index in row if index not in dropped) for row in rows]

    def state_dict(self) -> dict[str, Any]:
        """Plain Python (the words after the special tokens, and ``max_len``) for a checkpoint."""
        return {"words": self._tokens[len(self.SPECIALS) :], "max_len": self.max_len}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> WordTokenizer:
        missing = sorted({"words", "max_len"} - set(state))
        if missing:
            raise ValueError(f"not a WordTokenizer state: missing {missing}")
        return cls(list(state["words"]), state["max_len"])
