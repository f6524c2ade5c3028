"""CLIP score and R-precision of a text-to-image run's samples, in the space of a contrastive scorer.

Every ``every_n_epochs`` epochs the captions of the first ``num_images`` validation images (their first captions)
prompt one sample each (the model's sampling, guidance included, the same seed every epoch), and the scorer of
``scorer_ckpt`` (a ``model=contrastive`` run's checkpoint) logs

- ``val/clip_score``: the mean over samples of ``100 * max(cos(sample, prompt), 0)``;
- ``val/r_precision``: the share of samples whose prompt is more similar to them than each of ``distractors``
  captions of other validation images that differ from it (AttnGAN's R-precision);

and the same two of the real validation images with their own captions, ``val/clip_score_real`` and
``val/r_precision_real``: computed once, with the same distractors, they are the ceiling the scorer allows.

The numbers live in that scorer's space: they compare runs measured with the same ``scorer_ckpt`` only, never runs
measured with different scorers, nor published CLIP scores. Off unless ``scorer_ckpt`` is set.
"""

from __future__ import annotations

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info

from parti_exp.data.base import to_signed_unit
from parti_exp.errors import ConfigError
from parti_exp.metrics.text_image import clip_score, ids_by_caption, r_precision
from parti_exp.models.text_to_image.contrastive import ContrastiveModule, load_contrastive
from parti_exp.protocols import SamplesForPrompts
from parti_exp.runtime.schedule import check_every_n_epochs, due_this_epoch
from parti_exp.runtime.torch_utils import tensor_of
from parti_exp.runtime.validation import is_int_at_least, require

KEY = "callbacks.text_image_metrics.scorer_ckpt"


class TextImageMetrics(Callback):
    def __init__(
        self,
        scorer_ckpt: str | None = None,
        num_images: int = 100,
        every_n_epochs: int = 5,
        distractors: int = 99,
        batch_size: int = 100,
        seed: int = 0,
    ) -> None:
        # num_images >= 2: R-precision ranks a prompt against the captions of other images.
        least = {"num_images": (num_images, 2), "distractors": (distractors, 1), "batch_size": (batch_size, 1)}
        for name, (value, at_least) in least.items():
            require(is_int_at_least(value, at_least), f"text_image_metrics.{name}",
                    f"must be an integer >= {at_least}, got {value!r}")
        check_every_n_epochs("text_image_metrics", every_n_epochs)
        self.scorer_ckpt = scorer_ckpt
        self.num_images = num_images
        self.every_n_epochs = every_n_epochs
        self.distractors = distractors
        self.batch_size = batch_size
        self.seed = seed
        self.scorer: ContrastiveModule | None = None
        self.real_images: torch.Tensor | None = None  # uint8, N x C x H x W
        self.prompts: list[str] = []
        self.real_values: dict[str, float] | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.scorer is not None:
            return
        if self.scorer_ckpt is None:
            rank_zero_info(f"val/clip_score and val/r_precision are not measured: set {KEY}=<the checkpoints/last.ckpt "
                           "of a `python -m parti_exp.train model=contrastive` run on this data>")
            return
        if not isinstance(pl_module, SamplesForPrompts):
            raise TypeError(f"text_image_metrics measures text-to-image samples, and {type(pl_module).__name__} makes "
                            "none: set callbacks.text_image_metrics=null")
        datamodule = trainer.datamodule
        datamodule.setup("fit")
        self.scorer = load_contrastive(self.scorer_ckpt, KEY)
        self.scorer.check_images_fit(datamodule.img_size, datamodule.channels, f"{KEY}={self.scorer_ckpt}")
        val = datamodule.val_set
        count = min(self.num_images, len(val))
        self.real_images = tensor_of(val.images[:count])
        self.prompts = datamodule.caption_source().first(tensor_of(val.labels[:count]))
        if len(set(self.prompts)) < 2:
            raise ConfigError(f"text_image_metrics: the first {count} validation images all have the caption "
                              f"{self.prompts[0]!r}, and R-precision ranks different captions: raise "
                              "num_images")

    def _measure(self, image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> tuple[float, float]:
        # The same distractors for the samples and the real images: one seed.
        generator = torch.Generator().manual_seed(self.seed)
        precision = r_precision(image_embeddings, text_embeddings, ids_by_caption(self.prompts), self.distractors,
                                generator)
        return clip_score(image_embeddings, text_embeddings), precision

    @torch.no_grad()
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.scorer is None or not due_this_epoch(trainer, self.every_n_epochs):
            return
        scorer = self.scorer.to(pl_module.device)
        texts = scorer.embed_captions(self.prompts)
        if self.real_values is None:
            batches = self.real_images.split(self.batch_size)
            real = torch.cat([scorer.embed_images(to_signed_unit(batch)) for batch in batches])
            self.real_values = dict(zip(("val/clip_score_real", "val/r_precision_real"), self._measure(real, texts)))
        # A private generator: measuring does not move the training run's random stream.
        generator = torch.Generator(pl_module.device).manual_seed(self.seed)
        starts = range(0, len(self.prompts), self.batch_size)
        batches = [self.prompts[start : start + self.batch_size] for start in starts]
        samples = torch.cat([scorer.embed_images(pl_module.sample_images(p, generator=generator)) for p in batches])
        values = {**dict(zip(("val/clip_score", "val/r_precision"), self._measure(samples, texts))), **self.real_values}
        for key, value in values.items():
            pl_module.log(key, value, sync_dist=False, rank_zero_only=True)
        rank_zero_info(f"epoch {trainer.current_epoch}: " + ", ".join(f"{k}={v:.4g}" for k, v in values.items())
                       + f" ({len(self.prompts)} prompts, scorer {self.scorer_ckpt})")
