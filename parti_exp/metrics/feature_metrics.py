"""FID, IS and KID from one feature pass per image, computed by torchmetrics; precision, recall, density and
coverage (``prdc.py``) and the per-class share (``class_share.py``) from the same pass, when asked for.

torchmetrics' metrics each run their own feature network on the images they are given. Here the extractor
(Inception or the digit classifier) runs once per image and returns both its features and its logits; the
three metrics are built with a pass-through ``feature`` module and receive those tensors, so the Fréchet
distance, the kernel MMD and the Inception score are torchmetrics' code while the network runs a third as often.

Under DDP every rank calls ``compute()``: torchmetrics gathers the states of all ranks there (sums for FID,
concatenation for KID and IS). Real statistics loaded from the cache are therefore held by rank 0 only, and
the other ranks hold empty real states, so that the gathered real statistics count every image exactly once.
The real subset of precision/recall/density/coverage is not gathered: every rank holds all of it (``prdc.set_real``).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torchmetrics.image import FrechetInceptionDistance, InceptionScore, KernelInceptionDistance
from torchmetrics.utilities.data import dim_zero_cat

from parti_exp.metrics.class_share import ClassShare
from parti_exp.metrics.prdc import PrecisionRecallDensityCoverage

FID_REAL_STATES = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")


class Precomputed(nn.Module):
    """The ``feature`` module given to torchmetrics: its inputs already are the features."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features  # read by FrechetInceptionDistance instead of a dummy forward pass

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class FeatureMetrics(nn.Module):
    """The metrics over one extractor: ``extractor(uint8 images) -> (features, logits)``.

    The extractor must expose ``feature_dim`` and ``num_logits``; one with no logits (``num_logits == 0``, a
    contrastive scorer's image tower: its outputs are ``(features, None)``) gives no IS. ``prdc``: also precision,
    recall, density and coverage (their real subset is installed with ``self.prdc.set_real``); ``class_share``: also
    the share of generated images per argmax logit, for a classifier's logits (``class_shares()``).
    """

    def __init__(
        self,
        extractor: nn.Module,
        is_splits: int = 10,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        seed: int = 0,
        prdc: bool = False,
        class_share: bool = False,
    ) -> None:
        super().__init__()
        self.extractor = extractor
        self.feature_dim = int(extractor.feature_dim)
        self.seed = seed
        self.fid = FrechetInceptionDistance(feature=Precomputed(self.feature_dim), reset_real_features=False)
        with warnings.catch_warnings():
            # "will save all extracted features in buffer": by design, and bounded by num_real / num_fake.
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            self.kid = KernelInceptionDistance(
                feature=Precomputed(self.feature_dim),
                subsets=kid_subsets,
                subset_size=kid_subset_size,
                reset_real_features=False,
            )
            logits = int(extractor.num_logits)
            self.inception_score = InceptionScore(feature=Precomputed(logits), splits=is_splits) if logits else None
        self.prdc = PrecisionRecallDensityCoverage() if prdc else None
        self.class_share = ClassShare(int(extractor.num_logits)) if class_share else None

    @property
    def device(self) -> torch.device:
        return self.fid.device

    @torch.inference_mode()
    def update(self, images: torch.Tensor, real: bool) -> None:
        """Add a batch of uint8 images (on this module's device) to the real or the generated set."""
        features, logits = self.extractor(images)
        self.fid.update(features, real=real)  # accumulated in float64 by torchmetrics
        # float32 on every rank, as torch-fidelity computes KID, and as the empty placeholder of load_real_state.
        self.kid.update(features.float(), real=real)
        if not real:
            if self.inception_score is not None:
                # Softmax and KL in float64, as torch-fidelity computes IS.
                self.inception_score.update(logits.double())
            if self.prdc is not None:
                self.prdc.update(features)
            if self.class_share is not None:
                self.class_share.update(logits)

    def gathered_real_state(self) -> dict[str, torch.Tensor]:
        """The real-image states of all ranks together, on the CPU (a collective under DDP: call on every rank)."""
        with self.fid.sync_context(), self.kid.sync_context():
            state = {name: getattr(self.fid, name).detach().cpu().clone() for name in FID_REAL_STATES}
            state["kid_real_features"] = dim_zero_cat(self.kid.real_features).detach().cpu().clone()
        return state

    def load_real_state(self, state: dict[str, torch.Tensor] | None) -> None:
        """Install cached real statistics; ``None`` on the ranks that leave them to rank 0 (see module doc)."""
        self.fid.reset()
        if state is None:
            for name in FID_REAL_STATES:
                getattr(self.fid, name).zero_()
            # A (0, D) tensor rather than an empty list: torchmetrics' gather needs the same number of dims.
            self.kid.real_features = [torch.empty(0, self.feature_dim, device=self.device)]
            return
        for name in FID_REAL_STATES:
            setattr(self.fid, name, state[name].to(self.device))
        self.kid.real_features = [state["kid_real_features"].to(self.device, torch.float32)]

    @property
    def num_real(self) -> int:
        """Real images held by this rank."""
        return int(self.fid.real_features_num_samples)

    def compute(self) -> dict[str, float]:
        """FID, IS (mean and std over splits, if several; none without logits), KID (mean and std over subsets)
        and, if asked for, precision, recall, density and coverage; every rank calls it."""
        # IS splits and KID subsets are drawn with torch's global RNG: a fixed, forked seed makes the values
        # reproducible and identical on every rank, and leaves the training run's random stream untouched.
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            torch.manual_seed(self.seed)
            # With one IS split there is no spread: torch warns about its std, which is then left out below.
            warnings.filterwarnings("ignore", message=r"std\(\): degrees of freedom")
            values = {"fid": float(self.fid.compute())}
            kid_mean, kid_std = self.kid.compute()
            if self.inception_score is not None:
                is_mean, is_std = self.inception_score.compute()
                values["is"] = float(is_mean)
                if self.inception_score.splits > 1:
                    values["is_std"] = float(is_std)
        values.update({"kid": float(kid_mean), "kid_std": float(kid_std)})
        if self.prdc is not None:
            values.update(self.prdc.compute())
        return values

    def class_shares(self) -> torch.Tensor:
        """The share of generated images in each class (sums to 1); every rank calls it (gathered under DDP)."""
        if self.class_share is None:
            raise RuntimeError("FeatureMetrics was built without class_share=True")
        return self.class_share.compute()

    def reset_generated(self) -> None:
        """Forget the generated images (the real statistics stay)."""
        self.fid.reset()
        self.kid.reset()
        for metric in (self.inception_score, self.prdc, self.class_share):
            if metric is not None:
                metric.reset()
