"""The shared shape of every image DataModule.

Images are kept as one uint8 ``N x C x H x W`` array (in RAM or a memmap) and served a whole batch at a
time: the DataLoader fetches a batch with a single fancy index instead of decoding and transforming
images one by one. Conversion to float in [-1, 1] and random horizontal flips happen on whole batches
after the batch reaches the training device (``on_after_batch_transfer``), where they are nearly free.
"""

from __future__ import annotations

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import BatchSampler, DataLoader, Dataset

from parti_exp.data.captions.labels import LabelCaptions, captioner_for
from parti_exp.data.captions.sources import CaptionSource
from parti_exp.data.epoch_sampler import EpochShardSampler
from parti_exp.data.image_codes import CodeDataset, CodeRequest, cached_codes, pick_views
from parti_exp.errors import ConfigError
from parti_exp.runtime.torch_utils import tensor_of
from parti_exp.runtime.validation import is_int_at_least, require


class UInt8ImageDataset(Dataset):
    """``(images[i], labels[i])`` over a uint8 ``N x C x H x W`` array; batched fetch via ``__getitems__``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a uint8 N x C x H x W array, got {images.dtype} {images.shape}")
        if labels.ndim < 1 or len(labels) != len(images):
            raise ValueError(f"labels must have one row per image: {labels.shape} vs {len(images)} images")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.array(self.images[index])), tensor_of(self.labels[index])

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        # Sorted reads are sequential on a memmap; the batch order does not matter to the model.
        index = np.sort(np.asarray(indices))
        return torch.from_numpy(self.images[index]), tensor_of(self.labels[index])


def keep_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Collate for ``UInt8ImageDataset``: ``__getitems__`` already returns a stacked batch."""
    return batch


def to_signed_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def random_hflip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip a random half of the batch left-right, one coin per image, on the images' device."""
    flip = torch.rand(images.shape[0], device=images.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


class ImageDataModule(LightningDataModule):
    """Base DataModule: subclasses implement ``load_split`` and set ``name``, ``img_size``, ``channels``,
    ``num_classes``.

    ``img_size``, ``channels`` and ``num_classes`` are read by the nets' configs through interpolation
    (``${data.img_size}``), so they are declared once, in the data config.

    ``name`` is the dataset's one name: the prefix of its cache entries, the key of its real-image statistics and
    digit classifier, and what picks the captions a text-to-image model makes from its labels.
    """

    name = "images"
    # True where the val split is the dataset's official test split (CIFAR-10, MNIST), so metrics.real_split=test
    # can name it as published protocols do.
    val_is_official_test = False

    def __init__(
        self,
        img_size: int,
        channels: int,
        num_classes: int,
        batch_size: int = 64,
        num_workers: int = 0,
        hflip: bool = False,
        pin_memory: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("batch_size", batch_size), ("img_size", img_size), ("channels", channels)):
            require(is_int_at_least(value, 1), f"data.{name}", f"must be a positive integer, got {value!r}")
        require(channels in (1, 3), "data.channels", f"must be 1 (grayscale) or 3 (RGB), got {channels}")
        require(num_workers >= 0, "data.num_workers", f"must be >= 0, got {num_workers}")
        self.img_size = img_size
        self.channels = channels
        self.num_classes = num_classes
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.hflip = hflip
        self.pin_memory = pin_memory
        self.train_set: UInt8ImageDataset | None = None
        self.val_set: UInt8ImageDataset | None = None
        # The loaders' datasets when a token model asked for codes instead of pixels (``serve_codes``); the image
        # sets above stay, for the metrics and the callbacks that read pixels.
        self._code_sets: dict[str, CodeDataset] | None = None
        # (epoch, batches already consumed in it) from a checkpoint, applied to the next train loader.
        self._resume_position: tuple[int, int] | None = None
        # The checkpoint's number of processes, and the items of its epoch all of them had consumed together.
        self._resume_world_size: int | None = None
        self._resume_items: int | None = None
        # (epoch, items done by all ranks, this run's batch count then) of the epoch this run resumed in the middle
        # of: a checkpoint written later in it counts the items from there.
        self._resumed_in: tuple[int, int, int] | None = None

    def check_inputs(self) -> None:
        """Raise MissingInputError naming the files this data needs that are not there, and the fix. Data made in
        memory (the embedded digits) needs none."""

    def load_split(self, split: str) -> UInt8ImageDataset:
        """Return the ``"train"`` or ``"val"`` split as uint8 ``N x channels x img_size x img_size``."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_split")

    def caption_source(self) -> CaptionSource:
        """The captions of this data's images for text-to-image training: written from the class labels here (a
        captioned dataset returns its own)."""
        self.setup()
        return LabelCaptions(captioner_for(self.name), tensor_of(self.train_set.labels))

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = self._checked(self.load_split("train"), "train")
            self.val_set = self._checked(self.load_split("val"), "val")

    def serve_codes(self, request: CodeRequest) -> None:
        """From now on the loaders yield a frozen image tokenizer's codes (``B x h x w`` int64 on the device)
        instead of images: each image encoded once, its mirror too when ``data.hflip`` is on, cached on disk."""
        self.setup()
        self._code_sets = {
            split: CodeDataset(cached_codes(self.name, split, dataset.images, dataset.labels, request,
                                            mirrored=self.hflip and split == "train"), dataset.labels)
            for split, dataset in (("train", self.train_set), ("val", self.val_set))
        }

    def training_images(self) -> int:
        """Images of the training split (``CountsTrainingImages``); reads the data if not yet set up."""
        self.setup("fit")
        return len(self.train_set)

    def _checked(self, dataset: UInt8ImageDataset, split: str) -> UInt8ImageDataset:
        expected = (self.channels, self.img_size, self.img_size)
        if tuple(dataset.images.shape[1:]) != expected:
            raise ValueError(
                f"{type(self).__name__} {split} split has images of shape {tuple(dataset.images.shape[1:])}, "
                f"expected {expected} (channels, img_size, img_size)"
            )
        if split == "train" and len(dataset) < self.batch_size:
            raise ConfigError(
                f"{type(self).__name__}: the train split has {len(dataset)} images, fewer than "
                f"data.batch_size={self.batch_size}; lower data.batch_size"
            )
        return dataset

    def _loader(self, dataset: UInt8ImageDataset, train: bool) -> DataLoader:
        # The sampler shards over DDP ranks itself (trainer.use_distributed_sampler is false): its order
        # depends on (seed, epoch, rank) only, which is what makes a resumed run see the same batches.
        sampler = EpochShardSampler(len(dataset), shuffle=train)
        if train and self._resume_position is not None:
            epoch, batches_done = self._resume_position
            sampler.resume_at(epoch, self._resume_items)
            if self.trainer is not None and self._resume_world_size != self.trainer.world_size:
                batches_done = self._count_batches_as_this_world_size(self._resume_items)
            self._resumed_in = (epoch, self._resume_items, batches_done)
            self._resume_position = None
        return DataLoader(
            dataset,
            # A GAN step with a one-image batch breaks batch norm and wastes a step: drop the remainder.
            batch_sampler=BatchSampler(sampler, self.batch_size, drop_last=train),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            collate_fn=keep_batch,
            # Worker seeds come from this generator, not from the global RNG that training draws from.
            generator=torch.Generator().manual_seed(sampler.seed),
        )

    def _count_batches_as_this_world_size(self, items_done: int) -> int:
        """Set Lightning's count of the epoch's batches done to what ``items_done`` items are in this run's steps:
        it ends the epoch when that count reaches the epoch's length, which another number of processes changed
        (2 -> 1: the checkpoint's count is too low and the data runs out first, harmless; 1 -> 2: too high, and the
        epoch would end before its rest was served)."""
        done = items_done // (self.batch_size * self.trainer.world_size)
        progress = self.trainer.fit_loop.epoch_loop.batch_progress.current
        # Shifted alike: a checkpoint saved at a batch's end counts that batch processed, not yet completed.
        shift = done - progress.processed
        progress.ready, progress.started = progress.ready + shift, progress.started + shift
        progress.processed, progress.completed = progress.processed + shift, progress.completed + shift
        return done

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(self._code_sets["train"] if self._code_sets else self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(self._code_sets["val"] if self._code_sets else self.val_set, train=False)

    def state_dict(self) -> dict[str, int]:
        """Where the data order stands: the epoch the next batch belongs to and how many of its batches are done.

        Read from Lightning's loop progress at the moment the checkpoint is written: mid-epoch the epoch has
        started but is not yet processed; a save at an epoch's end (after its last batch) points at the next.
        """
        trainer = self.trainer
        if trainer is None or not trainer.training:
            return {}
        epochs = trainer.fit_loop.epoch_progress.current
        batches_done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        in_epoch = epochs.started > epochs.processed
        if in_epoch and batches_done < trainer.num_training_batches:
            state = {"epoch": epochs.processed, "batches_done": batches_done}
        else:
            state = {"epoch": epochs.processed + int(in_epoch), "batches_done": 0}
        # The items all ranks consumed of that epoch: what a resume on another number of processes continues after.
        items = state["batches_done"] * self.batch_size * trainer.world_size
        if self._resumed_in is not None and self._resumed_in[0] == state["epoch"]:
            _, items_then, batches_then = self._resumed_in
            items = items_then + (state["batches_done"] - batches_then) * self.batch_size * trainer.world_size
        return {**state, "items_done": items, "world_size": trainer.world_size}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        if not state_dict:
            return
        self._resume_position = (int(state_dict["epoch"]), int(state_dict["batches_done"]))
        world_size = self.trainer.world_size if self.trainer is not None else 1
        # Checkpoints from before world sizes were recorded were resumed with as many processes as wrote them.
        self._resume_world_size = int(state_dict.get("world_size", world_size))
        self._resume_items = int(state_dict.get(
            "items_done", self._resume_position[1] * self.batch_size * self._resume_world_size))

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        training = self.trainer is not None and self.trainer.training
        if self._code_sets:
            return pick_views(images, training, self.hflip), labels
        images = to_signed_unit(images)
        if self.hflip and training:
            images = random_hflip(images)
        return images, labels
