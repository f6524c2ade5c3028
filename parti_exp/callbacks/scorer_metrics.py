"""FID / KID and precision / recall / density / coverage in the image space of a contrastive scorer trained here
(``metrics=scorer``, ``metrics.scorer_ckpt``: a ``model=contrastive`` run on the same data and image size).

It needs no download, so it is the feature space of captioned images offline: Inception's weights may not be at
hand, and a digit classifier needs class labels. The features are the scorer's image embeddings (the space its
cosine similarities, reranking and ``val/clip_score`` live in), scaled to unit mean square per entry, the scale KID's
polynomial kernel assumes. The scorer has no classes: no IS. Logged as ``val/fid_scorer`` and so on; the numbers
compare only with numbers measured with the same scorer checkpoint, never with Inception FID or another scorer's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from parti_exp.data.base import ImageDataModule
from parti_exp.errors import BadDataError, ConfigError
from parti_exp.metrics.image_quality import ImageQualityMetrics
from parti_exp.models.text_to_image.contrastive import ContrastiveModule, load_contrastive

KEY = "metrics.scorer_ckpt"


class ScorerFeatures(nn.Module):
    """uint8 images -> (the scorer's image embeddings x sqrt(dim), no logits)."""

    num_logits = 0

    def __init__(self, scorer: ContrastiveModule) -> None:
        super().__init__()
        self.scorer = scorer
        self.feature_dim = scorer.embed_dim

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, None]:
        if tuple(images.shape[1:]) != self.scorer.image_shape:
            raise BadDataError(
                f"the images are {' x '.join(map(str, images.shape[1:]))} (channels, height, width) and the scorer "
                f"reads {' x '.join(map(str, self.scorer.image_shape))}: measure images of its data.img_size (a "
                "model trained at that size samples them), or train the scorer at this size"
            )
        # Unit vectors have mean square 1 / dim per entry.
        return self.scorer.embed_images(images.float() / 127.5 - 1) * math.sqrt(self.feature_dim), None


class ScorerMetrics(ImageQualityMetrics):
    suffix = "_scorer"

    def __init__(self, scorer_ckpt: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not scorer_ckpt:
            raise ConfigError(
                f"metrics=scorer measures in the image space of a contrastive scorer: set {KEY}=<the run directory "
                "(or checkpoints/last.ckpt) of a `python -m parti_exp.train model=contrastive` run on this data> "
                "(python -m parti_exp.evaluate also takes it as scorer_ckpt=)"
            )
        self.scorer_ckpt = str(scorer_ckpt)
        self.scorer: ContrastiveModule | None = None

    def _scorer(self) -> ContrastiveModule:
        if self.scorer is None:
            self.scorer = load_contrastive(self.scorer_ckpt, KEY)
        return self.scorer

    def load_extractor(self, datamodule: ImageDataModule | None, device: torch.device) -> nn.Module:
        scorer = self._scorer()
        if datamodule is not None:
            scorer.check_images_fit(datamodule.img_size, datamodule.channels, f"{KEY}={self.scorer_ckpt}")
        return ScorerFeatures(scorer.to(device))

    def feature_space(self) -> str:
        return f"the image embeddings of the contrastive scorer {self.scorer_ckpt}"

    def folder_channels(self, datamodule: ImageDataModule | None) -> int:
        return self._scorer().image_shape[0]
