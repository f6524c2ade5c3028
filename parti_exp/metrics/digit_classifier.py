"""A small CNN classifier, trained once per dataset, whose feature and logit spaces stand in for Inception's.

Inception features mean little on 8-28 px grayscale digits (they are upsampled 10-35x to 299 px and are far
from ImageNet); a classifier trained on the dataset's own train split sees what distinguishes its images.
Its numbers are not comparable with published (Inception) FID / IS, hence the ``_clf`` suffix on their names.
The trained weights are cached on disk under a fingerprint of the training images, labels and recipe, so the
classifier trains once (a few seconds on a CPU) and every later run and evaluation uses the same network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from parti_exp.data.base import UInt8ImageDataset
from parti_exp.errors import BadCheckpointError, MissingInputError
from parti_exp.metrics.disk_cache import array_fingerprint, atomic_save, load_if_present, text_fingerprint
from parti_exp.runtime.checkpoints import load_checkpoint_file
from parti_exp.runtime.images import to_uint8
from parti_exp.runtime.torch_utils import tensor_of

# Part of the cache key: change it with the architecture or the training recipe, so stale weights miss.
RECIPE_VERSION = 1


class DigitClassifier(nn.Module):
    """uint8 ``N x C x H x W`` images (H, W >= 8) -> (``feature_dim`` penultimate features, class logits)."""

    def __init__(self, channels: int, num_classes: int, feature_dim: int = 128) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.num_logits = num_classes
        # Three stride-2 convolutions: cheap enough to train in seconds on a CPU, and enough for digits.
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            # Any input size: the pooled map is always 4x4, so one classifier fits 8, 28, 32 or 64 px.
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(64 * 16, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)
        # Set after training so the features have unit mean square on the training images: the scale KID's
        # polynomial kernel (x.y / dim + 1)^3 assumes, as Inception's pool features roughly have.
        self.register_buffer("feature_scale", torch.ones(()))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(images.float() / 127.5 - 1.0)
        return features / self.feature_scale, self.head(features)


@dataclass
class TrainingRecipe:
    steps: int = 300
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0


@dataclass
class TrainedClassifier:
    net: DigitClassifier
    val_accuracy: float  # on the held-out (val) split, measured right after training
    path: Path  # the cache file
    trained_now: bool  # False: loaded from the cache


def train_classifier(
    train: UInt8ImageDataset, num_classes: int, recipe: TrainingRecipe, device: torch.device
) -> DigitClassifier:
    """Adam on random minibatches of the train split; deterministic on the CPU for a given recipe."""
    if torch.device(device).type != "cpu":
        return _train(train, num_classes, recipe, device)
    # Convolutions this small are latency-bound: on a CPU shared with other jobs, intra-op threads mostly wait
    # for each other (measured: 2 s with one thread, 90 s with two, on a busy 2-core machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(train, num_classes, recipe, device)
    finally:
        torch.set_num_threads(threads)


def _train(train: UInt8ImageDataset, num_classes: int, recipe: TrainingRecipe, device: torch.device) -> DigitClassifier:
    with torch.random.fork_rng(devices=[]):  # the training run's random stream stays untouched
        torch.manual_seed(recipe.seed)
        net = DigitClassifier(train.images.shape[1], num_classes).to(device)
    images = tensor_of(train.images).to(device)
    labels = tensor_of(train.labels).long().to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, recipe.steps)
    rng = torch.Generator().manual_seed(recipe.seed)
    net.train()
    for _ in range(recipe.steps):
        index = torch.randint(len(images), (recipe.batch_size,), generator=rng).to(device)
        loss = F.cross_entropy(net(images[index])[1], labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    net.eval().requires_grad_(False)
    with torch.inference_mode():
        features = torch.cat([net(batch)[0] for batch in images.split(512)])
    net.feature_scale.fill_(float(features.square().mean().sqrt()))
    return net


@torch.inference_mode()
def accuracy(net: DigitClassifier, split: UInt8ImageDataset, device: torch.device, batch_size: int = 512) -> float:
    correct = 0
    for start in range(0, len(split), batch_size):
        images = tensor_of(split.images[start : start + batch_size]).to(device)
        labels = tensor_of(split.labels[start : start + batch_size]).to(device)
        correct += int((net(images)[1].argmax(1) == labels).sum())
    return correct / len(split)


@torch.no_grad()
def class_probabilities(classifier: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Softmax over classes for images in [-1, 1], quantised like saved PNGs."""
    _, logits = classifier(to_uint8(images).to(next(classifier.parameters()).device))
    return logits.float().softmax(dim=-1)


def check_single_label(train: UInt8ImageDataset, num_classes: int, dataset: str) -> None:
    labels = np.asarray(train.labels)
    if labels.ndim != 1 or num_classes < 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"metrics=classifier trains a classifier on {dataset}'s class labels, but its labels have shape "
            f"{labels.shape} and dtype {labels.dtype} with num_classes={num_classes}: it needs one integer class "
            "per image and at least 2 classes. Use metrics=inception (or metrics=none) for this dataset."
        )


def load_or_train_classifier(
    train: UInt8ImageDataset,
    val: UInt8ImageDataset,
    num_classes: int,
    cache_dir: str | Path,
    device: torch.device,
    dataset: str = "dataset",
    recipe: TrainingRecipe | None = None,
) -> TrainedClassifier:
    """The classifier for this train split: from ``cache_dir`` if trained before, else trained now and saved."""
    recipe = recipe or TrainingRecipe()
    check_single_label(train, num_classes, dataset)
    key = text_fingerprint(array_fingerprint(train.images, train.labels), num_classes, recipe, RECIPE_VERSION)
    path = Path(cache_dir) / "classifier" / f"{dataset}-{key}.pt"
    cached = load_if_present(path)
    if cached is not None:
        with torch.random.fork_rng(devices=[]):  # the initial weights, replaced at once, draw from the run's stream
            net = DigitClassifier(train.images.shape[1], num_classes)
        net.load_state_dict(cached["state_dict"])
        net = net.to(device).eval().requires_grad_(False)
        return TrainedClassifier(net, float(cached["val_accuracy"]), path, trained_now=False)
    net = train_classifier(train, num_classes, recipe, device)
    val_accuracy = accuracy(net, val, device)
    state = {k: v.cpu() for k, v in net.state_dict().items()}
    atomic_save({"state_dict": state, "val_accuracy": val_accuracy}, path)
    return TrainedClassifier(net, val_accuracy, path, trained_now=True)


def _classifier_state(path: str | Path, key: str) -> dict:
    """The saved classifier at ``path`` (a file ``load_or_train_classifier`` cached), read as data."""
    if not Path(path).is_file():
        raise MissingInputError(f"{key}={path} does not exist: give a classifier file a metrics=classifier run cached "
                                "(it prints the path; <metrics.cache_dir>/classifier/<dataset>-<key>.pt)")
    saved = load_checkpoint_file(path, key)
    state = saved.get("state_dict") if isinstance(saved, dict) else None
    if not isinstance(state, dict) or not {"body.0.weight", "head.weight"} <= state.keys():
        raise BadCheckpointError(f"{key}={path} is not a digit classifier file (a metrics=classifier run caches them "
                                 "under <metrics.cache_dir>/classifier/)")
    return saved


def classifier_file_channels(path: str | Path, key: str = "metrics.classifier_ckpt") -> int:
    """The image channels the saved classifier at ``path`` reads."""
    return int(_classifier_state(path, key)["state_dict"]["body.0.weight"].shape[1])


def load_classifier_file(path: str | Path, key: str = "metrics.classifier_ckpt") -> tuple[DigitClassifier, float]:
    """The saved classifier at ``path``, frozen in eval mode, and its held-out accuracy when it was trained."""
    saved = _classifier_state(path, key)
    state = saved["state_dict"]
    channels, (num_classes, feature_dim) = state["body.0.weight"].shape[1], state["head.weight"].shape
    with torch.random.fork_rng(devices=[]):  # the initial weights, replaced at once, draw from the run's stream
        net = DigitClassifier(int(channels), int(num_classes), int(feature_dim))
    net.load_state_dict(state)
    return net.eval().requires_grad_(False), float(saved.get("val_accuracy", float("nan")))
