"""What both stage-2 decoders of text-to-image share (``model=parti``, autoregressive; ``model=muse``, masked tokens):
a Transformer over the codes of a frozen stage-1 image tokenizer, conditioned on the caption.

Each batch becomes (caption, image tokens): one of each image's captions is drawn from the data's caption source
with the global RNG (so captions are part of an exact resume), the frozen VQGAN of stage 1 turns images into codes,
and the decoder's ``token_loss`` scores the codes. A share of the captions is replaced by the null caption
(condition dropout), which is what lets classifier-free guidance ask the same network for an unconditional
prediction at sampling time. ``sample_images`` draws codes with the decoder's ``sample_tokens`` and decodes them;
with ``forced`` codes and a ``keep`` mask it fills only the other positions (editing).

The text tokenizer is trained on the training captions when the fit starts, or read from a file, and stored in the
checkpoint (``CaptionedModule``); so is the image tokenizer's architecture, so a checkpoint samples any prompt on its
own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from hydra.utils import get_class
from omegaconf import OmegaConf
from torch import nn

from parti_exp.data.captions.labels import captioner_for
from parti_exp.data.image_codes import CodeRequest, weights_key
from parti_exp.errors import BadCheckpointError, ConfigError, MissingInputError
from parti_exp.models.text_to_image.captioned import CaptionedModule
from parti_exp.models.text_to_image.text_tokenizer import WordTokenizer
from parti_exp.protocols import ImageTokenizer
from parti_exp.runtime.checkpoints import MODEL_EXTRAS_KEY, checkpoint_file, load_net
from parti_exp.runtime.console import expect_frozen_modules
from parti_exp.runtime.distributed import seed_per_rank
from parti_exp.runtime.instantiate import instantiate
from parti_exp.runtime.validation import require

TransformerFactory = Callable[..., nn.Module]
OptimizerFactory = Callable[..., torch.optim.Optimizer]


def load_image_tokenizer(path: str) -> tuple[nn.Module, dict]:
    """The frozen autoencoder of a ``model=vqgan`` checkpoint (encode: images -> codes, decode: codes -> images),
    and its net config."""
    try:
        path = checkpoint_file(path, "model.tokenizer_ckpt")
    except MissingInputError as error:
        raise MissingInputError(f"{error}; it must come from a "
                                "`python -m parti_exp.train model=vqgan` run") from None
    net, net_cfg = load_net(path, "generator", key="model.tokenizer_ckpt")
    if not isinstance(net, ImageTokenizer):
        raise BadCheckpointError(
            f"model.tokenizer_ckpt={path} holds a {type(net).__name__}, not an image tokenizer: train one first "
            "with `python -m parti_exp.train model=vqgan` and pass its checkpoints/last.ckpt"
        )
    return net, net_cfg


class ImageTokenModule(CaptionedModule):
    """A decoder names its sampling settings (``sampling_settings``, a dataclass with a ``guidance_scale`` where 1 is
    the conditional model), its logged loss (``loss_name``), and implements ``token_loss`` and ``sample_tokens``."""

    family = "text_to_image"
    sampling_settings: type
    loss_name: str

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
        code_cache: bool = False,
        code_cache_dir: str | None = None,
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
        require(not code_cache or code_cache_dir, "model.code_cache_dir",
                "must name a directory for the codes when model.code_cache=true")
        self.code_cache = code_cache
        self.code_cache_dir = code_cache_dir
        self.optimizer_factory = optimizer
        self.condition_dropout = condition_dropout
        self.sampling = self.sampling_settings(**(sampling or {}))

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

    @property
    def token_grid(self) -> tuple[int, int]:
        """The image tokenizer's grid of codes, ``(h, w)``: an image is ``h * w`` tokens in raster order."""
        return tuple(self.image_tokenizer.token_grid)

    # The image tokenizer stays frozen and in eval mode whatever Lightning does to the module.
    def train(self, mode: bool = True) -> ImageTokenModule:
        super().train(mode)
        self.image_tokenizer.eval()
        return self

    def setup(self, stage: str) -> None:
        super().setup(stage)
        # Lightning calls this after the data's setup and before it asks for the loaders: the moment to switch them
        # from pixels to codes. The module is not on its device yet; the tokenizer goes there now to encode (the
        # strategy moves the rest next), and encodes in full precision, outside any autocast.
        if self.code_cache and stage == "fit":
            device = self.trainer.strategy.root_device
            self.image_tokenizer.to(device)
            self.trainer.datamodule.serve_codes(CodeRequest(
                encode=self.image_tokenizer.encode,
                tokenizer_key=weights_key(self.image_tokenizer),
                codebook_size=self.image_tokenizer.codebook_size,
                directory=Path(self.code_cache_dir).expanduser(),
                device=device,
            ))

    def on_fit_start(self) -> None:
        seed_per_rank(self.trainer)
        expect_frozen_modules(sum(1 for _ in self.image_tokenizer.modules()))

    def sampling_nets(self) -> tuple[str, ...]:
        """The decoder and the frozen image tokenizer that turns its codes into pixels (``NamesSamplingNets``)."""
        return ("transformer", "image_tokenizer")

    def compile_nets(self) -> None:
        """torch.compile the Transformer (the frozen tokenizer runs once per batch and stays eager)."""
        self.transformer.compile()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.transformer.parameters())

    def _batch_loss(self, batch, drop_conditions: bool) -> torch.Tensor:
        images_or_codes, labels = batch
        if self.code_cache:
            tokens = images_or_codes.flatten(1)
        else:
            with torch.no_grad():
                tokens = self.image_tokenizer.encode(images_or_codes).flatten(1)
        ids, mask = self.encode_captions(self.captions.draw(labels))
        if drop_conditions and self.condition_dropout > 0:
            null_ids, null_mask = self.text_tokenizer.null(len(tokens))
            drop = (torch.rand(len(tokens)) < self.condition_dropout).to(self.device)[:, None]
            ids = torch.where(drop, null_ids.to(self.device), ids)
            mask = torch.where(drop, null_mask.to(self.device), mask)
        return self.token_loss(ids, mask, tokens)

    def token_loss(self, ids: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The decoder's loss on the ``B x N`` codes for the captions ``(ids, mask)``; any random draw from the global
        torch generator (on the CPU), which a resumed run restores."""
        raise NotImplementedError(f"{type(self).__name__} must implement token_loss")

    def sample_tokens(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        null_ids: torch.Tensor,
        null_mask: torch.Tensor,
        sampling: Any,
        generator: torch.Generator | None,
        forced: torch.Tensor | None,
        keep: torch.Tensor | None,
    ) -> torch.Tensor:
        """``B x N`` codes for the captions, ``forced`` where ``keep`` is set (both None: none kept)."""
        raise NotImplementedError(f"{type(self).__name__} must implement sample_tokens")

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._batch_loss(batch, drop_conditions=True)
        self.log(f"train/{self.loss_name}", loss, prog_bar=True, on_step=True, on_epoch=False,
                 batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        # Validation draws its captions (and the masked model its masks) from a stream of its own, seeded by the
        # batch: its loss compares across epochs, and the training stream, which a resumed run restores, stays put.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(batch_idx)
            loss = self._batch_loss(batch, drop_conditions=False)
        self.log(f"val/{self.loss_name}", loss, batch_size=len(batch[0]), sync_dist=True)

    @torch.no_grad()
    def sample_images(
        self,
        captions: list[str],
        sampling: Any = None,
        generator: torch.Generator | None = None,
        forced: torch.Tensor | None = None,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Images in [-1, 1] for the captions (any text): codes drawn by the decoder with ``sampling`` (default: the
        model's), decoded by the image tokenizer. Editing passes ``forced`` codes (``B x N``, from ``image_codes``)
        and the ``keep`` mask of the positions that take them."""
        ids, mask = self.encode_captions(captions, warn=True)
        null_ids, null_mask = (t.to(self.device) for t in self.text_tokenizer.null(1))
        tokens = self.sample_tokens(ids, mask, null_ids, null_mask, sampling or self.sampling, generator, forced,
                                    keep)
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
