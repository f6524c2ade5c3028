"""Text tokenizers: captions -> ``(ids, mask)``, ``B x max_len`` int64 ids and a bool mask of the real tokens.

``BPETokenizer`` (the default, ``model.text_tokenizer``): byte-level BPE from Hugging Face ``tokenizers``, trained
on the training captions (or read from a user's ``tokenizer.json``). Byte-level means there is no unknown word:
any prompt, in any script, encodes. Captions are NFKC-normalised (and lower-cased, by default), end with ``<end>``,
and are padded with ``<pad>``; ``<null>`` is the empty caption that classifier-free guidance trains and samples
with. A caption longer than ``max_len`` tokens keeps its first ``max_len - 1`` tokens and its ``<end>``.

``WordTokenizer``: one id per word of a closed vocabulary, what text-to-image checkpoints written before the
subword tokenizer use; they still load and sample with it.

Both are plain data for a checkpoint (``state_dict()``; ``tokenizer_from_state`` reads either back), so a
checkpoint samples on its own, without the dataset or a tokenizer file.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from parti_exp.errors import BadDataError, MissingInputError
from parti_exp.runtime.progress import progress, shows_bars
from parti_exp.runtime.validation import is_int_at_least, require

log = logging.getLogger(__name__)


class WordTokenizer:
    """Words to ids, padded to ``max_len`` tokens; ids 0-2 are ``<pad>``, ``<unk>`` (a word outside the vocabulary)
    and ``<null>``, words follow in order. Texts are lower-cased and split on whitespace."""

    PAD, UNK, NULL = "<pad>", "<unk>", "<null>"
    PAD_ID, UNK_ID, NULL_ID = 0, 1, 2
    SPECIALS = (PAD, UNK, NULL)

    def __init__(self, words: list[str], max_len: int = 16) -> None:
        require(not isinstance(max_len, bool) and is_int_at_least(max_len, 1), "max_len",
                f"must be an integer of at least 1, got {max_len!r}")
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

    def encode(self, captions: list[str], warn: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> (ids, mask): int64 and bool ``B x max_len``, the mask True at the caption's tokens.

        Captions are lower-cased and split on whitespace; a word outside the vocabulary becomes ``<unk>``; a caption
        longer than ``max_len`` words is refused (``warn`` is for the tokenizers that truncate).
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


class BPETokenizer:
    PAD, NULL, END = "<pad>", "<null>", "<end>"
    SPECIALS = (PAD, NULL, END)

    def __init__(self, tokenizer: Tokenizer, max_len: int) -> None:
        require(not isinstance(max_len, bool) and is_int_at_least(max_len, 2), "max_len",
                f"must be an integer of at least 2 (a token and <end>), got {max_len!r}")
        # A tokenizer file of the user's (T5's, CLIP's) lacks our special tokens: they are added after its own.
        tokenizer.add_special_tokens(list(self.SPECIALS))
        self.tokenizer = tokenizer
        self.max_len = max_len
        self.pad_id, self.null_id, self.end_id = (tokenizer.token_to_id(token) for token in self.SPECIALS)

    @classmethod
    def train(cls, corpus: list[str], vocab_size: int, max_len: int, lowercase: bool = True) -> BPETokenizer:
        """Byte-level BPE with at most ``vocab_size`` tokens (the 256 bytes, the merges learnt from ``corpus``,
        and the special tokens)."""
        smallest = 256 + len(cls.SPECIALS)
        require(is_int_at_least(vocab_size, smallest), "model.text_tokenizer.vocab_size",
                f"must be an integer >= {smallest} (every byte and the special tokens), got {vocab_size!r}")
        if not corpus:
            raise BadDataError("cannot train a text tokenizer: the training split has no captions")
        tokenizer = Tokenizer(models.BPE())
        steps = [normalizers.NFKC(), normalizers.Strip()] + ([normalizers.Lowercase()] if lowercase else [])
        tokenizer.normalizer = normalizers.Sequence(steps)
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(cls.SPECIALS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=shows_bars(),  # the library's own bar, on a terminal
        )
        with progress("training the text tokenizer", len(corpus), "captions"):
            tokenizer.train_from_iterator(corpus, trainer, length=len(corpus))
        return cls(tokenizer, max_len)

    @classmethod
    def from_file(cls, path: str | Path, max_len: int) -> BPETokenizer:
        """A ``tokenizers`` JSON file (``tokenizer.json``), e.g. a T5 or CLIP tokenizer kept on disk."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise MissingInputError(
                f"model.text_tokenizer.path={path} does not exist: give a Hugging Face tokenizers file "
                "(tokenizer.json), or null to train one on the captions"
            )
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as error:  # tokenizers raises a bare Exception for a file it cannot parse
            raise BadDataError(f"model.text_tokenizer.path={path} is not a tokenizers JSON file: {error}") from None
        return cls(tokenizer, max_len)

    @classmethod
    def cached(cls, corpus: list[str], cache_dir: str | Path, vocab_size: int, max_len: int,
               lowercase: bool = True) -> BPETokenizer:
        """Trained once per corpus and settings, then read from ``cache_dir``."""
        digest = hashlib.sha1(f"{vocab_size} {lowercase}\n".encode())
        for caption in corpus:
            digest.update(caption.encode("utf-8") + b"\n")
        path = Path(cache_dir) / f"bpe-{vocab_size}-{digest.hexdigest()[:16]}.json"
        if path.is_file():
            return cls(Tokenizer.from_file(str(path)), max_len)
        trained = cls.train(corpus, vocab_size, max_len, lowercase)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written under a temporary name and renamed: a reader never sees half a file.
        temp = path.with_name(f".{path.name}.{os.getpid()}")
        trained.tokenizer.save(str(temp))
        os.replace(temp, path)
        log.info("text tokenizer: trained on %d captions (%d tokens), cached in %s", len(corpus),
                 trained.vocab_size, path)
        return trained

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def token_counts(self, captions: list[str]) -> list[int]:
        """Tokens per caption, ``<end>`` included, before truncation."""
        return [len(encoding.ids) + 1 for encoding in self.tokenizer.encode_batch(captions, add_special_tokens=False)]

    def encode(self, captions: list[str], warn: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> (ids, mask); with ``warn``, each truncated caption is reported with what it lost."""
        ids = torch.full((len(captions), self.max_len), self.pad_id, dtype=torch.int64)
        mask = torch.zeros((len(captions), self.max_len), dtype=torch.bool)
        for row, encoding in enumerate(self.tokenizer.encode_batch(captions, add_special_tokens=False)):
            tokens = encoding.ids
            if len(tokens) + 1 > self.max_len:
                if warn:
                    dropped = len(tokens) + 1 - self.max_len
                    log.warning("prompt %r has %d tokens, more than max_text_len=%d: the last %d were dropped",
                                captions[row], len(tokens) + 1, self.max_len, dropped)
                tokens = tokens[: self.max_len - 1]
            tokens = [*tokens, self.end_id]
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = True
        return ids, mask

    def null(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch`` copies of the null caption: ``<null>`` then padding, the mask True only at position 0."""
        ids = torch.full((batch, self.max_len), self.pad_id, dtype=torch.int64)
        mask = torch.zeros((batch, self.max_len), dtype=torch.bool)
        ids[:, 0] = self.null_id
        mask[:, 0] = True
        return ids, mask

    def decode(self, ids: torch.Tensor) -> list[str]:
        return self.tokenizer.decode_batch(ids.tolist(), skip_special_tokens=True)

    def state_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint: the tokenizer's JSON text and ``max_len``."""
        return {"kind": "bpe", "json": self.tokenizer.to_str(), "max_len": self.max_len}


def tokenizer_from_state(state: dict[str, Any]) -> WordTokenizer | BPETokenizer:
    """The text tokenizer a checkpoint stored, of either kind."""
    if state.get("kind") == "bpe":
        return BPETokenizer(Tokenizer.from_str(state["json"]), int(state["max_len"]))
    return WordTokenizer.from_state_dict(state)
