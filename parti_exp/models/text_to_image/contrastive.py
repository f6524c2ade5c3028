"""The contrastive image-text scorer (``model=contrastive``): a CLIP-style dual encoder trained on the data's captions.

``python -m parti_exp.train model=contrastive data=...`` trains it on the same captions and the same kind of text
tokenizer as the text-to-image model (``CaptionedModule``: trained on the corpus, stored in the checkpoint). Each step
draws one caption per image (global RNG, part of an exact resume) and minimises symmetric InfoNCE with a learned
temperature. Validation embeds every validation image with its first caption and logs ``val/contrastive_loss``,
``val/r_precision`` (own caption ranked above 99 captions of other images that differ from it) and
``val/retrieval_top1`` (own caption the nearest among all distinct validation captions); under DDP each rank ranks
within its own shard and the ranks' values are averaged.

It takes the place of Parti's CoCa: ``ContrastiveScorer`` (``parti_exp.inference.rerank``) reranks samples with it, and
``TextImageMetrics`` measures text-to-image runs in its space. ``load_contrastive`` reads one from its checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from parti_exp.errors import BadCheckpointError, ConfigError, MissingInputError
from parti_exp.metrics.text_image import ids_by_caption, r_precision, retrieval_top1
from parti_exp.models.text_to_image.captioned import CaptionedModule
from parti_exp.models.text_to_image.hard_negatives import WordOrderNegatives
from parti_exp.models.text_to_image.info_nce import symmetric_info_nce
from parti_exp.nets.dual_encoder import DualEncoder, PooledTextEncoder
from parti_exp.protocols import ImageEmbedder
from parti_exp.runtime.checkpoints import checkpoint_file, module_from_checkpoint, read_checkpoint
from parti_exp.runtime.distributed import seed_per_rank
from parti_exp.runtime.torch_utils import eval_mode
from parti_exp.runtime.validation import is_int_at_least, require

TextEncoderFactory = Callable[..., PooledTextEncoder]
OptimizerFactory = Callable[..., torch.optim.Optimizer]


class ContrastiveModule(CaptionedModule):
    family = "contrastive"

    def __init__(
        self,
        image_encoder: nn.Module,
        text_encoder: TextEncoderFactory,
        optimizer: OptimizerFactory,
        text_tokenizer: dict,
        max_text_len: int = 16,
        embed_dim: int = 128,
        temperature: float = 0.07,
        max_logit_scale: float = 100.0,
        r_precision_distractors: int = 99,
        val_seed: int = 0,
        hard_negatives: dict | None = None,
    ) -> None:
        """``image_encoder``: an ``ImageEmbedder`` for the data's images; ``text_encoder``: a partial
        ``PooledTextEncoder`` (its vocabulary and length come from the text tokenizer). ``val_seed`` draws the
        R-precision distractors, the same ones every epoch. ``hard_negatives``: ``{enabled, mirrors}``; enabled, each
        image is also ranked against a false caption made from its own (``WordOrderNegatives``, NegCLIP), so that
        word order and relation words count."""
        if not isinstance(image_encoder, ImageEmbedder):
            raise TypeError(f"model.image_encoder must embed images (img_size, channels, dim and forward(images) -> "
                            f"B x dim, like parti_exp.nets.image_encoder.ImageEncoder), got "
                            f"{type(image_encoder).__name__}")
        require(is_int_at_least(r_precision_distractors, 1), "model.r_precision_distractors",
                f"must be an integer >= 1, got {r_precision_distractors!r}")
        super().__init__(text_tokenizer, max_text_len)
        text_tower = text_encoder(text_vocab_size=self.text_vocab_rows, max_text_len=max_text_len)
        self.dual_encoder = DualEncoder(image_encoder, text_tower, embed_dim, temperature, max_logit_scale)
        self.optimizer_factory = optimizer
        self.r_precision_distractors = r_precision_distractors
        self.val_seed = val_seed
        settings = dict(hard_negatives or {})
        require(set(settings) <= {"enabled", "mirrors"}, "model.hard_negatives",
                f"takes enabled and mirrors, got {sorted(settings)}")
        self.hard_negatives = WordOrderNegatives(settings.get("mirrors", ())) if settings.get("enabled") else None
        # (image embeddings, text embeddings, captions) of each validation batch, ranked together at the epoch end.
        self._val_batches: list[tuple[torch.Tensor, torch.Tensor, list[str]]] = []

    def on_fit_start(self) -> None:
        seed_per_rank(self.trainer)

    def sampling_nets(self) -> tuple[str, ...]:
        """Both towers: a scorer embeds the images and the prompts (``NamesSamplingNets``)."""
        return ("dual_encoder",)

    def compile_nets(self) -> None:
        """torch.compile both towers."""
        self.dual_encoder.image_encoder.compile()
        self.dual_encoder.text_encoder.compile()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # Weight decay on matrices only, as CLIP: decaying the biases, the norms' gains and the logit scale would
        # pull them toward zero, and a zero logit scale is a temperature of 1.
        params = list(self.dual_encoder.parameters())
        return self.optimizer_factory([
            {"params": [p for p in params if p.ndim >= 2]},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ])

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        self.dual_encoder.clamp_logit_scale_()

    def _pair_embeddings(self, images: torch.Tensor, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.encode_captions(captions)
        return self.dual_encoder.embed_images(images), self.dual_encoder.embed_text(ids, mask)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        captions = self.captions.draw(labels)
        image_embeddings, text_embeddings = self._pair_embeddings(images, captions)
        scale = self.dual_encoder.logit_scale.exp()
        negatives, has_negative = None, None
        if self.hard_negatives is not None:
            false_captions = self.hard_negatives(captions)
            has_negative = torch.tensor([caption is not None for caption in false_captions], device=self.device)
            # A caption without a hard negative still takes a row (masked out of the loss): the batch keeps its shape.
            ids, mask = self.encode_captions([caption or "" for caption in false_captions])
            negatives = self.dual_encoder.embed_text(ids, mask)
        loss = symmetric_info_nce(image_embeddings, text_embeddings, scale, negatives, has_negative)
        self.log("train/contrastive_loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(images))
        self.log("train/logit_scale", scale.detach(), on_step=True, on_epoch=False, batch_size=len(images))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_batches = []

    def validation_step(self, batch, batch_idx: int) -> None:
        images, labels = batch
        captions = self.captions.first(labels)
        image_embeddings, text_embeddings = self._pair_embeddings(images, captions)
        loss = symmetric_info_nce(image_embeddings, text_embeddings, self.dual_encoder.logit_scale.exp())
        self.log("val/contrastive_loss", loss, batch_size=len(images), sync_dist=True)
        self._val_batches.append((image_embeddings, text_embeddings, captions))

    def on_validation_epoch_end(self) -> None:
        if not self._val_batches:
            return
        images = torch.cat([batch[0] for batch in self._val_batches])
        texts = torch.cat([batch[1] for batch in self._val_batches])
        ids = ids_by_caption([caption for batch in self._val_batches for caption in batch[2]])
        self._val_batches = []
        if len(ids.unique()) < 2:
            rank_zero_warn("val/r_precision and val/retrieval_top1 need validation images with different captions; "
                           "these all have the same one, so they are not measured")
            return
        generator = torch.Generator().manual_seed(self.val_seed)
        precision = r_precision(images, texts, ids, self.r_precision_distractors, generator)
        self.log("val/r_precision", precision, sync_dist=True, prog_bar=True)
        self.log("val/retrieval_top1", retrieval_top1(images, texts, ids), sync_dist=True)

    @torch.no_grad()
    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] (any device) -> ``B x embed_dim`` unit vectors on the model's device."""
        with eval_mode(self.dual_encoder):
            # Decoded samples can overshoot [-1, 1] a little; real images never do.
            return self.dual_encoder.embed_images(images.to(self.device).float().clamp(-1, 1))

    @torch.no_grad()
    def embed_captions(self, captions: list[str]) -> torch.Tensor:
        """Any text -> ``B x embed_dim`` unit vectors on the model's device."""
        with eval_mode(self.dual_encoder):
            return self.dual_encoder.embed_text(*self.encode_captions(captions))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, img_size, img_size)`` of the images the image tower reads."""
        tower = self.dual_encoder.image_encoder
        return tower.channels, tower.img_size, tower.img_size

    @property
    def embed_dim(self) -> int:
        return self.dual_encoder.image_proj.out_features

    def check_images_fit(self, img_size: int, channels: int, what: str) -> None:
        """Raise ValueError unless the image tower was built for ``channels x img_size x img_size`` images."""
        tower = self.dual_encoder.image_encoder
        if (tower.channels, tower.img_size) != (channels, img_size):
            raise ConfigError(
                f"{what} scores {tower.channels} x {tower.img_size} x {tower.img_size} images, these are {channels} x "
                f"{img_size} x {img_size}: train model=contrastive on the same data=... and data.img_size"
            )


def load_contrastive(path: str | Path, what: str = "scorer_ckpt") -> ContrastiveModule:
    """The trained scorer of a ``model=contrastive`` checkpoint, frozen and in eval mode; ``what``: the config key
    that named it, for the error messages."""
    try:
        path = checkpoint_file(path, what)
    except MissingInputError as error:
        raise MissingInputError(f"{error}; it must come from a "
                                "`python -m parti_exp.train model=contrastive data=...` run") from None
    module, _ = module_from_checkpoint(read_checkpoint(path, what))
    if not isinstance(module, ContrastiveModule):
        raise BadCheckpointError(f"{what}={path} holds a {type(module).__name__}, not a contrastive scorer: train one "
                                 "with `python -m parti_exp.train model=contrastive data=...` and pass its "
                                 "checkpoints/last.ckpt")
    return module.eval().requires_grad_(False)
