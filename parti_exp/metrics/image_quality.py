"""The metrics callback: FID / IS / KID (and precision / recall / density / coverage) at the end of every
``every_n_epochs``-th validation epoch.

``setup`` (on every rank, before the first training step) loads the feature extractor, failing there if it
cannot be had, and the real-image statistics: from the disk cache, or extracted once and saved. At the end of
a validation epoch each rank generates its share of ``num_fake`` images, every rank takes part in
``compute()`` (torchmetrics gathers the ranks' states there), and the values are logged with
``pl_module.log`` as ``val/fid``, ``val/is``, ``val/kid`` (plus a suffix naming a non-Inception feature space),
where ``ModelCheckpoint`` can monitor them. With the classifier, the share of generated images per class is
logged too: its minimum as ``val/min_class_share_clf``, the shares as a bar chart image ``val/class_share``.

``prepare`` and ``measure`` take a Lightning ``Strategy`` rather than a trainer, so that
``python -m parti_exp.evaluate`` runs the same code on one device with a ``SingleDeviceStrategy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.strategies import ParallelStrategy, Strategy
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from torch import nn

from parti_exp.data.base import ImageDataModule
from parti_exp.errors import ConfigError
from parti_exp.metrics.class_share import bar_chart
from parti_exp.metrics.digit_classifier import classifier_file_channels, load_classifier_file, load_or_train_classifier
from parti_exp.metrics.disk_cache import array_fingerprint, module_fingerprint, text_fingerprint
from parti_exp.metrics.feature_metrics import FeatureMetrics
from parti_exp.metrics.generated_images import generated_batches
from parti_exp.metrics.inception import RESIZE_RULES, InceptionFeatures, resolve_weights
from parti_exp.metrics.prdc import DC_K, PR_K
from parti_exp.metrics.prdc import NAMES as PRDC_NAMES
from parti_exp.metrics.real_stats_cache import RealStatsCache
from parti_exp.protocols import MakesImagesForMetrics
from parti_exp.runtime.loggers import log_image
from parti_exp.runtime.progress import progress
from parti_exp.runtime.schedule import check_every_n_epochs, due_this_epoch
from parti_exp.runtime.torch_utils import tensor_of
from parti_exp.runtime.validation import is_int_at_least, require

# "test": the dataset's official test split, for data whose val split is that split (CIFAR-10's test_batch, MNIST's
# t10k files): the name published protocols use (StudioGAN's "10k test images").
SPLITS = ("train", "val", "test")


def rank_and_world(strategy: Strategy) -> tuple[int, int]:
    """This process's rank and the number of processes (0 and 1 on a single device, which has no ranks)."""
    if isinstance(strategy, ParallelStrategy):
        return strategy.global_rank, strategy.world_size
    return 0, 1


class ImageQualityMetrics(Callback):
    """Base of the metrics callbacks; a subclass says which feature space (``load_extractor``) and how its
    metrics are named (``suffix``)."""

    suffix: ClassVar[str] = ""
    # True when the extractor's logits are the dataset's classes: the per-class share of generated images is measured.
    class_share: ClassVar[bool] = False

    def __init__(
        self,
        num_fake: int,
        cache_dir: str,
        every_n_epochs: int = 1,
        batch_size: int = 100,
        real_split: str = "train",
        num_real: int | None = None,
        is_splits: int = 10,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        seed: int = 0,
        prdc: bool = True,
        num_real_knn: int = 10000,
    ) -> None:
        checks = {
            "num_fake": (num_fake, 2),
            "batch_size": (batch_size, 1),
            "is_splits": (is_splits, 1),
            "kid_subsets": (kid_subsets, 1),
            "kid_subset_size": (kid_subset_size, 2),
        }
        check_every_n_epochs("metrics", every_n_epochs)
        for key, (value, least) in checks.items():
            require(is_int_at_least(value, least), f"metrics.{key}", f"must be an integer >= {least}, got {value!r}")
        require(is_splits <= num_fake, f"metrics.is_splits={is_splits}", f"is more than metrics.num_fake={num_fake}")
        require(real_split in SPLITS, "metrics.real_split", f"must be one of {SPLITS}, got {real_split!r}")
        require(num_real is None or is_int_at_least(num_real, 2), "metrics.num_real",
                f"must be null (the whole split) or an integer >= 2, got {num_real!r}")
        require(not prdc or is_int_at_least(num_real_knn, DC_K + 1), "metrics.num_real_knn",
                f"must be an integer >= {DC_K + 1} (density and coverage look at {DC_K} nearest neighbours besides the "
                f"sample itself), got {num_real_knn!r}")
        require(not prdc or num_fake > PR_K, f"metrics.num_fake={num_fake}",
                f"is too few for recall ({PR_K} nearest generated neighbours): at least {PR_K + 1}, or "
                "metrics.prdc=false")
        self.num_fake = num_fake
        self.cache_dir = Path(cache_dir)
        self.every_n_epochs = every_n_epochs
        self.batch_size = batch_size
        self.real_split = real_split
        self.num_real = num_real
        self.is_splits = is_splits
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size
        self.seed = seed
        self.prdc = prdc
        self.num_real_knn = num_real_knn
        self.metrics: FeatureMetrics | None = None
        # The last measurement's per-class shares (class_share only), for the bar chart.
        self.class_shares: torch.Tensor | None = None
        self.label_pool: torch.Tensor | None = None
        self.real_shape: tuple[int, ...] | None = None
        # One-off numbers from setup (e.g. the classifier's held-out accuracy), sent to the loggers at step 0.
        self.setup_logs: dict[str, float] = {}

    @property
    def needs_train_split(self) -> bool:
        """True when the extractor is trained on the data config's train split (the evaluate CLI then needs it)."""
        return False

    def load_extractor(self, datamodule: ImageDataModule | None, device: torch.device) -> nn.Module:
        """The network mapping uint8 images to ``(features, logits)``, on ``device``."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_extractor")

    def feature_space(self) -> str:
        """The space the numbers are measured in, in words (with the file it was read from): metrics.json and the
        console say it beside every number, which compares only with numbers of the same space."""
        raise NotImplementedError(f"{type(self).__name__} must implement feature_space")

    def extractor_fingerprint(self, extractor: nn.Module) -> str:
        """What the real statistics' cache key says of the extractor: its weights, and whatever else changes its
        features (InceptionMetrics' resize rule)."""
        return module_fingerprint(extractor)

    def folder_channels(self, datamodule: ImageDataModule | None) -> int:
        """The channels folder images are read with (``evaluate real_dir= fake_dir=``)."""
        return datamodule.channels if datamodule is not None else 3

    def feature_metrics(self, extractor: nn.Module, num_real: int, num_fake: int) -> FeatureMetrics:
        """FID / IS / KID over ``extractor`` for sets of ``num_real`` and ``num_fake`` images."""
        # KID's subsets are drawn without replacement from both sets, so they cannot be larger than either.
        subset_size = min(self.kid_subset_size, num_real, num_fake)
        if subset_size < self.kid_subset_size:
            rank_zero_info(
                f"metrics: KID subsets of {subset_size} images (metrics.kid_subset_size={self.kid_subset_size} is "
                f"more than the {num_real} real / {num_fake} generated images)"
            )
        return FeatureMetrics(
            extractor, self.is_splits, self.kid_subsets, subset_size, self.seed, self.prdc, self.class_share
        )

    def prepare(self, datamodule: ImageDataModule, strategy: Strategy) -> None:
        """Load the extractor and the real statistics on every rank (a collective under DDP)."""
        rank, world = rank_and_world(strategy)
        require(self.num_fake >= world, f"metrics.num_fake={self.num_fake}",
                f"leaves some of the {world} processes no image")
        device = strategy.root_device
        # Rank 0 first: it may download the weights or train the classifier into the shared cache, which the
        # other ranks then read instead of repeating the work.
        extractor = self.load_extractor(datamodule, device) if strategy.is_global_zero else None
        strategy.barrier("parti_exp_metrics_extractor")
        if extractor is None:
            extractor = self.load_extractor(datamodule, device)

        images, labels = self.real_images(datamodule)
        self.metrics = self.feature_metrics(extractor, len(images), self.num_fake).to(device)
        name = f"{datamodule.name}-{self.real_split}"
        cache = RealStatsCache(self.cache_dir)
        path = cache.path(
            datamodule.name, self.real_split, array_fingerprint(images, labels), self.extractor_fingerprint(extractor)
        )
        # Rank 0 decides for all: the ranks may not share a file system.
        hit = strategy.broadcast(path.is_file() if strategy.is_global_zero else None)
        if hit:
            state = cache.load(path) if strategy.is_global_zero else None
            self.metrics.load_real_state(state)
            rank_zero_info(f"metrics: real statistics of {len(images)} {name} images from {path}")
        else:
            rank_zero_info(f"metrics: extracting features of {len(images)} {name} images (once; cached in {path})")
            shard = images[rank::world]
            with progress(f"metrics: features of the real {name} images", len(shard)) as advance:
                for start in range(0, len(shard), self.batch_size):
                    batch = tensor_of(shard[start : start + self.batch_size])
                    self.metrics.update(batch.to(device), real=True)
                    advance(len(batch))
            state = self.metrics.gathered_real_state()
            if strategy.is_global_zero:
                cache.save(path, state)
        if self.prdc:
            self.prepare_knn(cache, cache.knn_path(path, self.num_real_knn, (PR_K, DC_K)), state, strategy)
        self.label_pool = tensor_of(labels)
        self.real_shape = tuple(images.shape[1:])

    def prepare_knn(
        self, cache: RealStatsCache, path: Path, stats: dict[str, torch.Tensor] | None, strategy: Strategy
    ) -> None:
        """Install the real kNN subset and radii on every rank: from ``path``, or drawn from the real features in
        ``stats`` (rank 0 always holds them) and saved there. Extracts nothing either way."""
        state = None
        if strategy.is_global_zero:
            state = cache.load(path)
            if state is None:
                state = self.metrics.prdc.real_state(stats["kid_real_features"], self.num_real_knn)
                cache.save(path, state)
                rank_zero_info(f"metrics: nearest-neighbour radii of {len(state['features'])} real features in {path}")
        # Every rank compares its gathered generated features with the whole subset: all ranks need it.
        self.metrics.prdc.set_real(strategy.broadcast(state))

    def measure(self, model: MakesImagesForMetrics, strategy: Strategy) -> dict[str, float]:
        """Generate ``num_fake`` images across the ranks and return the metrics; every rank must call it."""
        if self.metrics is None:
            raise RuntimeError(f"{type(self).__name__}.measure() called before prepare()")
        rank, world = rank_and_world(strategy)
        count = self.num_fake // world + (rank < self.num_fake % world)
        with progress("metrics: generated images", count) as advance:
            for batch in generated_batches(model, count, self.batch_size, self.seed + rank, self.label_pool):
                if tuple(batch.shape[1:]) != self.real_shape:
                    raise ValueError(
                        f"the generator makes {tuple(batch.shape[1:])} images but the real {self.real_split} images "
                        f"are {self.real_shape} (channels, height, width): the data config does not match the model"
                    )
                self.metrics.update(batch, real=False)
                advance(len(batch))
        values = self.results(self.metrics)
        self.metrics.reset_generated()
        return values

    def results(self, metrics: FeatureMetrics) -> dict[str, float]:
        """``metrics``' values, named for this feature space, with the smallest class share (if measured)."""
        values = self.named(metrics.compute())
        if self.class_share:
            self.class_shares = metrics.class_shares().cpu()
            values[f"min_class_share{self.suffix}"] = float(self.class_shares.min())
        return values

    def named(self, values: dict[str, float]) -> dict[str, float]:
        """``FeatureMetrics.compute()``'s keys named for this feature space: ``kid_std`` -> ``kid_clf_std``."""
        renamed = {}
        for key, value in values.items():
            metric, _, statistic = key.partition("_")
            renamed[f"{metric}{self.suffix}" + (f"_{statistic}" if statistic else "")] = value
        return renamed

    def real_images(self, datamodule: ImageDataModule) -> tuple[np.ndarray, np.ndarray]:
        """The real images (uint8 ``N x C x H x W``) and labels the generated images are compared with."""
        datamodule.setup("fit")
        if self.real_split == "test":
            require(datamodule.val_is_official_test, "metrics.real_split=test",
                    f"needs data whose val split is its official test split (cifar10, mnist); {datamodule.name}'s val "
                    "split is not: use metrics.real_split=val (held-out images) or train")
        split = datamodule.train_set if self.real_split == "train" else datamodule.val_set
        # len(split.images), not len(split): an unpaired dataset serves more items than it has target images.
        if self.num_real is None or self.num_real >= len(split.images):
            return split.images, np.asarray(split.labels)
        # A fixed random subset: the same images every epoch and every run, so the cache keeps hitting.
        index = np.sort(np.random.default_rng(0).choice(len(split.images), self.num_real, replace=False))
        return split.images[index], np.asarray(split.labels)[index]

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage not in ("fit", "validate") or self.metrics is not None:
            return
        if not isinstance(trainer.datamodule, ImageDataModule):
            raise TypeError(
                f"{type(self).__name__} reads the real images from a parti_exp ImageDataModule passed as "
                f"trainer.fit(datamodule=...), got {type(trainer.datamodule).__name__}"
            )
        if not isinstance(pl_module, MakesImagesForMetrics):
            raise TypeError(
                f"the metrics compare generated images with real ones, and {type(pl_module).__name__} does not "
                "generate images on its own (an image tokenizer reconstructs them): use metrics=none"
            )
        self.prepare(trainer.datamodule, trainer.strategy)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # After a resume has restored the step: a resumed run logged them when it started.
        if trainer.is_global_zero and trainer.global_step == 0:
            for logger in trainer.loggers:
                logger.log_metrics(self.setup_logs, step=0)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not due_this_epoch(trainer, self.every_n_epochs):
            return
        values = self.measure(pl_module, trainer.strategy)
        names = ("fid", "is", "kid", *(PRDC_NAMES if self.prdc else ()), "min_class_share")
        keys = [f"{name}{self.suffix}" for name in names if f"{name}{self.suffix}" in values]  # IS: with logits
        if self.class_share:
            self.log_class_shares(trainer)
        for key in keys:
            # Every rank holds the same value; sync_dist only satisfies Lightning's epoch-level DDP logging.
            pl_module.log(f"val/{key}", values[key], sync_dist=True, prog_bar=key == keys[0])
        shown = ", ".join(f"{key}={values[key]:.4g}" for key in keys)
        rank_zero_info(f"epoch {trainer.current_epoch}: {shown} ({self.num_fake} generated images)")

    @rank_zero_only
    def log_class_shares(self, trainer: Trainer) -> None:
        title = f"epoch {trainer.current_epoch}: share of {self.num_fake} generated images per class"
        log_image(trainer.loggers, "val/class_share", bar_chart(self.class_shares, title), trainer.global_step)


class InceptionMetrics(ImageQualityMetrics):
    """FID / IS / KID in torch-fidelity's InceptionV3 space: the numbers papers report (``metrics=inception``)."""

    def __init__(self, weights_path: str | None = None, resize: str = "legacy", **kwargs) -> None:
        super().__init__(**kwargs)
        require(resize in RESIZE_RULES, "metrics.resize", f"must be one of {RESIZE_RULES}, got {resize!r}")
        self.resize = resize
        # Resolved when the config is instantiated: without weights the run stops before it trains.
        self.weights_path = resolve_weights(weights_path)

    def load_extractor(self, datamodule: ImageDataModule | None, device: torch.device) -> nn.Module:
        return InceptionFeatures(self.weights_path, self.resize).to(device)

    def extractor_fingerprint(self, extractor: nn.Module) -> str:
        weights = super().extractor_fingerprint(extractor)
        # legacy keeps the key it always had, so statistics cached before the switch existed still hit
        return weights if self.resize == "legacy" else text_fingerprint(weights, f"resize={self.resize}")

    def feature_space(self) -> str:
        return (f"InceptionV3 of torch-fidelity, the TF-ported weights of published FID/IS/KID ({self.weights_path}), "
                f"images resized to 299 px by the {self.resize} rule")


class ClassifierMetrics(ImageQualityMetrics):
    """Fréchet distance, an Inception-style score and KID in a digit classifier's spaces (``metrics=classifier``),
    logged as ``val/fid_clf``, ``val/is_clf``, ``val/kid_clf``: not comparable with Inception numbers.

    The classifier is trained on the data's train split the first time (and cached), or read from
    ``classifier_ckpt``, a file such a run cached (``<cache_dir>/classifier/<dataset>-<key>.pt``; the run prints its
    path): then no data config is needed, and folders of images are measured in exactly that run's space."""

    suffix = "_clf"
    class_share = True

    def __init__(self, classifier_ckpt: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.classifier_ckpt = classifier_ckpt
        self.source = "the data's train split"  # told by load_extractor

    @property
    def needs_train_split(self) -> bool:
        return self.classifier_ckpt is None

    def load_extractor(self, datamodule: ImageDataModule | None, device: torch.device) -> nn.Module:
        if self.classifier_ckpt is not None:
            net, val_accuracy = load_classifier_file(self.classifier_ckpt, "metrics.classifier_ckpt")
            self.source = str(self.classifier_ckpt)
            self.setup_logs["metrics/classifier_val_acc"] = val_accuracy
            return net.to(device)
        if datamodule is None:
            raise ConfigError(
                "metrics=classifier trains its classifier on a labelled dataset's train split: give that dataset "
                "(data=digits, data=mnist, data=folder data.path=DIR with one subfolder per class, ...), or the "
                "classifier a training run cached: metrics.classifier_ckpt=<data/.cache/metrics/classifier/*.pt>"
            )
        datamodule.setup("fit")
        result = load_or_train_classifier(
            datamodule.train_set,
            datamodule.val_set,
            datamodule.num_classes,
            self.cache_dir,
            device,
            dataset=datamodule.name,
        )
        how = "trained now" if result.trained_now else "trained before"
        rank_zero_info(
            f"metrics=classifier: digit classifier {how}, cached in {result.path} (metrics.classifier_ckpt= for "
            f"evaluate); held-out accuracy {result.val_accuracy:.4f} on the {len(datamodule.val_set)} val images"
        )
        self.source = f"{result.path}, trained on the {datamodule.name} train split"
        self.setup_logs["metrics/classifier_val_acc"] = result.val_accuracy
        return result.net

    def feature_space(self) -> str:
        return f"a digit classifier's penultimate features and class logits ({self.source})"

    def folder_channels(self, datamodule: ImageDataModule | None) -> int:
        if self.classifier_ckpt is not None:
            return classifier_file_channels(self.classifier_ckpt, "metrics.classifier_ckpt")
        return super().folder_channels(datamodule)
