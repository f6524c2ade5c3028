"""Stage 2 of text-to-image (``model=parti``): an encoder-decoder Transformer over a frozen tokenizer's codes.

Each batch becomes (caption, image tokens): one of each image's captions is drawn from the data's caption source
with the global RNG (so captions are part of an exact resume), the frozen VQGAN of stage 1 turns images into codes,
and the Transformer learns the codes by cross-entropy, with teacher forcing. A share of the captions is replaced
by the null caption (condition dropout), which is what lets classifier-free guidance ask the same network for
an unconditional prediction at sampling time.

The text tokenizer is trained on the training captions when the fit starts (``setup``; cached per corpus), unless
``model.text_tokenizer.path`` names a tokenizer file; either way the checkpoint stores it, so a checkpoint samples
any prompt on its own. The text embedding has ``model.text_tokenizer.vocab_size`` rows, fixed before the data is
read. Checkpoints written before the subword tokenizer (``text_tokenizer: null``) keep their word tokenizer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from hydra.utils import get_class
from lightning.pytorch import LightningModule
from omegaconf import OmegaConf
from torch import nn

from parti_exp.checkpoints import MODEL_EXTRAS_KEY, load_net
from parti_exp.data.caption_source import CaptionSource
from parti_exp.data.label_captions import captioner_for
from parti_exp.distributed import seed_per_rank
from parti_exp.instantiate import instantiate
from parti_exp.nets import ImageTokenizer
from parti_exp.parti.sampling import SamplingConfig, sample_image_tokens
from parti_exp.parti.text_tokenizer import BPETokenizer, TextTokenizer, WordTokenizer, tokenizer_from_state
from parti_exp.parti.transformer import TextToImageTransformer

TransformerFactory = Callable[..., TextToImageTransformer]
OptimizerFactory = Callable[..., torch.optim.Optimizer]

log = logging.getLogger(__name__)


@dataclass
class TextTokenizerSettings:
    """``model.text_tokenizer``: a byte-level BPE of ``vocab_size`` tokens trained on the captions (cached in
    ``cache_dir``), or the tokenizers file at ``path``."""

    vocab_size: int = 512
    lowercase: bool = True
    path: str | None = None
    cache_dir: str | None = None


def load_image_tokenizer(path: str) -> tuple[nn.Module, dict]:
    """The frozen autoencoder of a ``model=vqgan`` checkpoint (encode: images -> codes, decode: codes -> images),
    and its net config."""
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"model.tokenizer_ckpt={path} does not exist: give the checkpoints/last.ckpt of a "
            "`python -m parti_exp.train model=vqgan` run"
        )
    net, net_cfg = load_net(path, "generator")
    if not isinstance(net, ImageTokenizer):
        raise ValueError(
            f"model.tokenizer_ckpt={path} holds a {type(net).__name__}, not an image tokenizer: train one first "
            "with `python -m parti_exp.train model=vqgan` and pass its checkpoints/last.ckpt"
        )
    return net, net_cfg


class TextToImageModule(LightningModule):
    def __init__(
        self,
        tokenizer_ckpt: str,
        transformer: TransformerFactory,
        optimizer: OptimizerFactory,
        text_tokenizer: dict | None = None,
        max_text_len: int = 16,
        condition_dropout: float = 0.1,
        sampling: dict | None = None,
        data_img_size: int | None = None,
        data_channels: int | None = None,
        image_tokenizer: str | None = None,
        dataset: str | None = None,
    ) -> None:
        """``text_tokenizer``: ``TextTokenizerSettings`` as a mapping. Null only in checkpoints written before the
        subword tokenizer, which name their ``dataset`` (the data config's ``_target_``) for its word list.

        ``image_tokenizer``: leave null. Checkpoints of this module record the tokenizer's net config there, so
        that they rebuild the model on their own (the tokenizer's weights are in their state_dict). It is YAML
        text rather than a mapping because Hydra would build a nested ``_target_`` before this module sees it."""
        super().__init__()
        if not 0.0 <= condition_dropout < 1.0:
            raise ValueError(f"model.condition_dropout must be in [0, 1), got {condition_dropout}")
        self.max_text_len = max_text_len
        self.text_tokenizer_settings: TextTokenizerSettings | None = None
        # Trained from the captions in setup() (or read from a checkpoint) unless a file or the word list gives it.
        self.text_tokenizer: TextTokenizer | None = None
        if text_tokenizer is None:
            captioner = captioner_for(get_class(dataset).name) if dataset else None
            if captioner is None:
                raise ValueError("model.text_tokenizer is required (the subword tokenizer's settings)")
            self.text_tokenizer = WordTokenizer.from_captioner(captioner, max_len=max_text_len)
            text_vocab_size = self.text_tokenizer.vocab_size
        else:
            self.text_tokenizer_settings = TextTokenizerSettings(**text_tokenizer)
            text_vocab_size = self.text_tokenizer_settings.vocab_size
            if self.text_tokenizer_settings.path is not None:
                self.text_tokenizer = BPETokenizer.from_file(self.text_tokenizer_settings.path, max_text_len)
                # A tokenizer file brings its own vocabulary: the embedding has a row for each of its tokens.
                text_vocab_size = self.text_tokenizer.vocab_size
        # The data's captions: set when a fit starts (setup), or by whoever measures the model on that data
        # (use_captions).
        self.captions: CaptionSource | None = None
        if image_tokenizer is None:
            self.image_tokenizer, tokenizer_config = load_image_tokenizer(tokenizer_ckpt)
            self.image_tokenizer_yaml = OmegaConf.to_yaml(OmegaConf.create(tokenizer_config))
        else:
            self.image_tokenizer = instantiate(OmegaConf.create(image_tokenizer))
            self.image_tokenizer_yaml = image_tokenizer
        self.image_tokenizer.eval().requires_grad_(False)
        self._check_tokenizer_fits_data(tokenizer_ckpt, data_img_size, data_channels)
        self.transformer = transformer(
            text_vocab_size=text_vocab_size,
            codebook_size=self.image_tokenizer.codebook_size,
            token_grid=self.image_tokenizer.token_grid,
            max_text_len=max_text_len,
        )
        self.optimizer_factory = optimizer
        self.condition_dropout = condition_dropout
        self.sampling = SamplingConfig(**(sampling or {}))

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
                                            settings.lowercase)  # fmt: skip
        lengths = tokenizer.token_counts(corpus)
        too_long = sum(length > self.max_text_len for length in lengths)
        if too_long:
            log.warning("text tokenizer: %d of %d training captions are longer than max_text_len=%d tokens (up to "
                        "%d) and are truncated; raise model.max_text_len to keep them whole", too_long, len(corpus),
                        self.max_text_len, max(lengths))  # fmt: skip
        return tokenizer

    def _check_tokenizer_fits_data(self, path: str, img_size: int | None, channels: int | None) -> None:
        if img_size is None or channels is None:
            return
        try:
            codes = self.image_tokenizer.encode(torch.zeros(1, channels, img_size, img_size))
        except RuntimeError as error:
            raise ValueError(
                f"model.tokenizer_ckpt={path} cannot encode this data's {channels} x {img_size} x {img_size} images "
                f"({error}); train the tokenizer on the same data=... and data.img_size"
            ) from error
        if tuple(codes.shape[1:]) != tuple(self.image_tokenizer.token_grid):
            raise ValueError(
                f"model.tokenizer_ckpt={path} makes a {tuple(codes.shape[1:])} token grid from {img_size} px images, "
                f"it was trained for {self.image_tokenizer.token_grid}: use the data.img_size it was trained on"
            )

    # The image tokenizer stays frozen and in eval mode whatever Lightning does to the module.
    def train(self, mode: bool = True) -> TextToImageModule:
        super().train(mode)
        self.image_tokenizer.eval()
        return self

    def on_fit_start(self) -> None:
        seed_per_rank(self.trainer)

    def compile_nets(self) -> None:
        """torch.compile the Transformer (the frozen tokenizer runs once per batch and stays eager)."""
        self.transformer.compile()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.transformer.parameters())

    def encode_captions(self, captions: list[str], warn: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and mask on the model's device; ``warn``: report prompts cut at ``max_text_len``."""
        ids, mask = self.text_tokenizer.encode(captions, warn=warn)
        return ids.to(self.device), mask.to(self.device)

    def _batch_loss(self, batch, drop_conditions: bool) -> torch.Tensor:
        images, labels = batch
        with torch.no_grad():
            tokens = self.image_tokenizer.encode(images).flatten(1)
        ids, mask = self.encode_captions(self.captions.draw(labels))
        if drop_conditions and self.condition_dropout > 0:
            null_ids, null_mask = self.text_tokenizer.null(len(images))
            drop = (torch.rand(len(images)) < self.condition_dropout).to(self.device)[:, None]
            ids = torch.where(drop, null_ids.to(self.device), ids)
            mask = torch.where(drop, null_mask.to(self.device), mask)
        logits = self.transformer(ids, mask, tokens)
        return F.cross_entropy(logits.flatten(0, 1).float(), tokens.flatten())

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._batch_loss(batch, drop_conditions=True)
        self.log("train/ce", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        self.log("val/ce", self._batch_loss(batch, drop_conditions=False), batch_size=len(batch[0]), sync_dist=True)

    @torch.no_grad()
    def sample_images(
        self, captions: list[str], sampling: SamplingConfig | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Images in [-1, 1] for the captions (any text): tokens sampled by the Transformer, decoded by the image
        tokenizer."""
        ids, mask = self.encode_captions(captions, warn=True)
        null_ids, null_mask = (t.to(self.device) for t in self.text_tokenizer.null(1))
        tokens = sample_image_tokens(self.transformer, ids, mask, null_ids, null_mask, sampling or self.sampling,
                                     generator)  # fmt: skip
        return self.image_tokenizer.decode(tokens.view(len(captions), *self.image_tokenizer.token_grid)).float()

    def generate_for_metrics(self, n: int, labels: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        """The metrics' interface: each label (a class, or a captioned image's caption id) becomes its first
        caption."""
        if labels is None or self.captions is None:
            raise ValueError("a text-to-image model generates from captions: the metrics need the data's labels and "
                             "caption source")  # fmt: skip
        captions = self.captions.first(labels)
        # The sampler draws on the model's device; its seed comes from the caller's generator.
        seed = int(torch.randint(2**62, (1,), generator=generator))
        return self.sample_images(captions, generator=torch.Generator(self.device).manual_seed(seed))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The tokenizer is part of the model: the checkpoint samples without the captions it was trained on.
        checkpoint["text_tokenizer"] = self.text_tokenizer.state_dict()
        # The tokenizer's architecture, so the checkpoint rebuilds without the tokenizer's own file.
        checkpoint[MODEL_EXTRAS_KEY] = {"image_tokenizer": self.image_tokenizer_yaml}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "text_tokenizer" in checkpoint:
            saved = tokenizer_from_state(checkpoint["text_tokenizer"])
            rows = self.transformer.text_embed.num_embeddings
            if saved.vocab_size > rows:
                raise ValueError(
                    f"this checkpoint's text tokenizer has {saved.vocab_size} tokens, the text embedding {rows} rows: "
                    "model.text_tokenizer.vocab_size must be what it was trained with"
                )
            self.text_tokenizer = saved
