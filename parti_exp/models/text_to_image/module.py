"""Stage 2 of text-to-image (``model=parti``): an encoder-decoder Transformer over a frozen tokenizer's codes.

Each batch becomes (caption, image tokens): one of each image's captions is drawn from the data's caption source
with the global RNG (so captions are part of an exact resume), the frozen VQGAN of stage 1 turns images into codes,
and the Transformer learns the codes by cross-entropy, with teacher forcing. A share of the captions is replaced
by the null caption (condition dropout), which is what lets classifier-free guidance ask the same network for
an unconditional prediction at sampling time.

The text tokenizer is trained on the training captions when the fit starts, or read from a file, and stored in the
checkpoint, so a checkpoint samples any prompt on its own (``CaptionedModule``). Checkpoints written before the
subword tokenizer (``text_tokenizer: null``) keep their word tokenizer.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from hydra.utils import get_class
from omegaconf import OmegaConf
from torch import nn

from parti_exp.data.captions.labels import captioner_for
from parti_exp.errors import BadCheckpointError, ConfigError, MissingInputError
from parti_exp.models.protocols import ImageTokenizer
from parti_exp.models.text_to_image.captioned import CaptionedModule
from parti_exp.models.text_to_image.sampling import SamplingConfig, sample_image_tokens
from parti_exp.models.text_to_image.text_tokenizer import WordTokenizer
from parti_exp.nets.transformer import TextToImageTransformer
from parti_exp.runtime.checkpoints import MODEL_EXTRAS_KEY, checkpoint_file, load_net
from parti_exp.runtime.console import expect_frozen_modules
from parti_exp.runtime.distributed import seed_per_rank
from parti_exp.runtime.instantiate import instantiate
from parti_exp.runtime.validation import require

TransformerFactory = Callable[..., TextToImageTransformer]
OptimizerFactory = Callable[..., torch.optim.Optimizer]


def load_image_tokenizer(path: str) -> tuple[nn.Module, dict]:
    """The frozen autoencoder of a ``model=vqgan`` checkpoint (encode: images -> codes, decode: codes -> images),
    and its net config."""
    try:
        path = checkpoint_file(path, "model.tokenizer_ckpt")
    except MissingInputError as error:
        raise MissingInputError(f"{error}: the run directory (or its checkpoints/last.ckpt) of a "
                                "`python -m parti_exp.train model=vqgan` run") from None
    net, net_cfg = load_net(path, "generator", key="model.tokenizer_ckpt")
    if not isinstance(net, ImageTokenizer):
        raise BadCheckpointError(
            f"model.tokenizer_ckpt={path} holds a {type(net).__name__}, not an image tokenizer: train one first "
            "with `python -m parti_exp.train model=vqgan` and pass its checkpoints/last.ckpt"
        )
    return net, net_cfg


class TextToImageModule(CaptionedModule):
    family = "text_to_image"

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
        require(0.0 <= condition_dropout < 1.0, "model.condition_dropout",
                f"must be in [0, 1), got {condition_dropout}")
        word_tokenizer = None
        if text_tokenizer is None and dataset:
            word_tokenizer = WordTokenizer.from_captioner(captioner_for(get_class(dataset).name), max_text_len)
        super().__init__(text_tokenizer, max_text_len, word_tokenizer)
        if image_tokenizer is None:
            self.image_tokenizer, tokenizer_config = load_image_tokenizer(tokenizer_ckpt)
            self.image_tokenizer_yaml = OmegaConf.to_yaml(OmegaConf.create(tokenizer_config))
        else:
            self.image_tokenizer = instantiate(OmegaConf.create(image_tokenizer))
            self.image_tokenizer_yaml = image_tokenizer
        self.image_tokenizer.eval().requires_grad_(False)
        self._check_tokenizer_fits_data(tokenizer_ckpt, data_img_size, data_channels)
        self.transformer = transformer(
            text_vocab_size=self.text_vocab_rows,
            codebook_size=self.image_tokenizer.codebook_size,
            token_grid=self.image_tokenizer.token_grid,
            max_text_len=max_text_len,
        )
        self.optimizer_factory = optimizer
        self.condition_dropout = condition_dropout
        self.sampling = SamplingConfig(**(sampling or {}))

    def _check_tokenizer_fits_data(self, path: str, img_size: int | None, channels: int | None) -> None:
        if img_size is None or channels is None:
            return
        try:
            codes = self.image_tokenizer.encode(torch.zeros(1, channels, img_size, img_size))
        except RuntimeError as error:
            raise ConfigError(
                f"model.tokenizer_ckpt={path} cannot encode this data's {channels} x {img_size} x {img_size} images "
                f"({error}); train the tokenizer on the same data=... and data.img_size"
            ) from error
        if tuple(codes.shape[1:]) != tuple(self.image_tokenizer.token_grid):
            raise ConfigError(
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
        expect_frozen_modules(sum(1 for _ in self.image_tokenizer.modules()))

    def compile_nets(self) -> None:
        """torch.compile the Transformer (the frozen tokenizer runs once per batch and stays eager)."""
        self.transformer.compile()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.transformer.parameters())

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
        self,
        captions: list[str],
        sampling: SamplingConfig | None = None,
        generator: torch.Generator | None = None,
        forced: torch.Tensor | None = None,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Images in [-1, 1] for the captions (any text): tokens sampled by the Transformer, decoded by the image
        tokenizer. Editing passes ``forced`` codes (``B x N``, from ``image_codes``) and the ``keep`` mask of the
        positions that take them (``sample_image_tokens``)."""
        ids, mask = self.encode_captions(captions, warn=True)
        null_ids, null_mask = (t.to(self.device) for t in self.text_tokenizer.null(1))
        tokens = sample_image_tokens(self.transformer, ids, mask, null_ids, null_mask, sampling or self.sampling,
                                     generator, forced, keep)
        return self.decode_codes(tokens)

    @torch.no_grad()
    def image_codes(self, images: torch.Tensor) -> torch.Tensor:
        """``B x N`` codes (raster order) of images in [-1, 1], as the Transformer reads them."""
        return self.image_tokenizer.encode(images.to(self.device)).flatten(1)

    @torch.no_grad()
    def decode_codes(self, tokens: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] of ``B x N`` codes."""
        return self.image_tokenizer.decode(tokens.view(len(tokens), *self.image_tokenizer.token_grid)).float()

    def generate_for_metrics(self, n: int, labels: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        """The metrics' interface: each label (a class, or a captioned image's caption id) becomes its first
        caption."""
        if labels is None or self.captions is None:
            raise ValueError("a text-to-image model generates from captions: the metrics need the data's labels and "
                             "caption source")
        captions = self.captions.first(labels)
        # The sampler draws on the model's device; its seed comes from the caller's generator.
        seed = int(torch.randint(2**62, (1,), generator=generator))
        return self.sample_images(captions, generator=torch.Generator(self.device).manual_seed(seed))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        # The image tokenizer's architecture, so the checkpoint rebuilds without the tokenizer's own file.
        checkpoint[MODEL_EXTRAS_KEY] = {"image_tokenizer": self.image_tokenizer_yaml}
