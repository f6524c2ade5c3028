"""What every module that reads the data's captions shares: its text tokenizer, from training to checkpoint.

The text-to-image model (``model=parti``) and the contrastive scorer (``model=contrastive``) both train a byte-level
BPE on the training captions when the fit starts (``setup``; cached per corpus), unless ``model.text_tokenizer.path``
names a tokenizers file; either way the checkpoint stores it, so a checkpoint encodes any text on its own. The text
embedding has ``model.text_tokenizer.vocab_size`` rows (``text_vocab_rows``), fixed before the data is read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from lightning.pytorch import LightningModule

from parti_exp.data.captions.sources import CaptionSource
from parti_exp.errors import BadCheckpointError
from parti_exp.models.text_to_image.text_tokenizer import BPETokenizer, tokenizer_from_state
from parti_exp.protocols import TextTokenizer
from parti_exp.runtime.validation import require

log = logging.getLogger(__name__)


@dataclass
class TextTokenizerSettings:
    """``model.text_tokenizer``: a byte-level BPE of ``vocab_size`` tokens trained on the captions (cached in
    ``cache_dir``), or the tokenizers file at ``path``."""

    vocab_size: int = 512
    lowercase: bool = True
    path: str | None = None
    cache_dir: str | None = None


class CaptionedModule(LightningModule):
    def __init__(
        self, text_tokenizer: dict | None, max_text_len: int, fixed_tokenizer: TextTokenizer | None = None
    ) -> None:
        """``text_tokenizer``: ``TextTokenizerSettings`` as a mapping, or None with a ``fixed_tokenizer`` (the word
        tokenizer of text-to-image checkpoints written before the subword one)."""
        super().__init__()
        self.max_text_len = max_text_len
        self.text_tokenizer_settings = TextTokenizerSettings(**text_tokenizer) if text_tokenizer is not None else None
        # Trained from the captions in setup() (or read from a checkpoint) unless a file or the caller gives it.
        self.text_tokenizer: TextTokenizer | None = fixed_tokenizer
        require(self.text_tokenizer_settings is not None or fixed_tokenizer is not None, "model.text_tokenizer",
                "is required (the subword tokenizer's settings)")
        if self.text_tokenizer_settings is not None and self.text_tokenizer_settings.path is not None:
            self.text_tokenizer = BPETokenizer.from_file(self.text_tokenizer_settings.path, max_text_len)
        # A tokenizer known now brings its own vocabulary: the embedding has a row for each of its tokens.
        known = self.text_tokenizer
        self.text_vocab_rows = known.vocab_size if known is not None else self.text_tokenizer_settings.vocab_size
        # The data's captions: set when a fit starts (setup), or by whoever measures the model on that data
        # (use_captions).
        self.captions: CaptionSource | None = None

    @property
    def progress_step(self) -> int:
        """Optimizer steps (``ReportsProgress``)."""
        return self.trainer.global_step

    def setup(self, stage: str) -> None:
        self.use_captions(self.trainer.datamodule.caption_source())

    def use_captions(self, source: CaptionSource) -> None:
        """Caption with ``source`` (the data's); trains the text tokenizer on its corpus if the model has none yet."""
        self.captions = source
        if self.text_tokenizer is None:
            self.text_tokenizer = self._trained_text_tokenizer(source.corpus())

    def _trained_text_tokenizer(self, corpus: list[str]) -> BPETokenizer:
        settings = self.text_tokenizer_settings
        if settings.cache_dir is None:
            tokenizer = BPETokenizer.train(corpus, settings.vocab_size, self.max_text_len, settings.lowercase)
        else:
            tokenizer = BPETokenizer.cached(corpus, settings.cache_dir, settings.vocab_size, self.max_text_len,
                                            settings.lowercase)
        lengths = tokenizer.token_counts(corpus)
        too_long = sum(length > self.max_text_len for length in lengths)
        if too_long:
            log.warning("text tokenizer: %d of %d training captions are longer than max_text_len=%d tokens (up to "
                        "%d) and are truncated; raise model.max_text_len to keep them whole", too_long, len(corpus),
                        self.max_text_len, max(lengths))
        return tokenizer

    def encode_captions(self, captions: list[str], warn: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and mask on the model's device; ``warn``: report prompts cut at ``max_text_len``."""
        ids, mask = self.text_tokenizer.encode(captions, warn=warn)
        return ids.to(self.device), mask.to(self.device)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The tokenizer is part of the model: the checkpoint reads text without the captions it was trained on.
        checkpoint["text_tokenizer"] = self.text_tokenizer.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "text_tokenizer" in checkpoint:
            saved = tokenizer_from_state(checkpoint["text_tokenizer"])
            if saved.vocab_size > self.text_vocab_rows:
                raise BadCheckpointError(
                    f"this checkpoint's text tokenizer has {saved.vocab_size} tokens, the text embedding "
                    f"{self.text_vocab_rows} rows: model.text_tokenizer.vocab_size must be what it was trained with"
                )
            self.text_tokenizer = saved
