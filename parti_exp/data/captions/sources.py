"""Where a dataset's captions come from, behind one interface for the text-to-image model.

Batches stay ``(images, labels)`` for every DataModule. A captioned dataset's labels are caption ids (one per
image, unique across its splits), and its ``CaptionSource`` holds every image's captions by id; a labelled dataset's
labels are its classes, and its source writes captions from them with templates. Either way the model asks
``caption_source().draw(labels)`` for one caption per image, drawn from the global torch RNG so that the captions
of a seeded run, and of an exact resume, are the same.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod

import torch


class CaptionSource(ABC):
    @abstractmethod
    def draw(self, labels: torch.Tensor) -> list[str]:
        """One caption per row of ``labels``, chosen at random (global torch RNG) among the image's captions."""

    @abstractmethod
    def first(self, labels: torch.Tensor) -> list[str]:
        """One fixed caption per row of ``labels``: what grids and metrics prompt with."""

    @abstractmethod
    def corpus(self) -> list[str]:
        """Every caption the training text can contain: what a text tokenizer is trained on."""

    @abstractmethod
    def prompts(self, count: int) -> list[str]:
        """``count`` (at most) fixed prompts that show what the data holds, for the epoch-end grids."""

    def fingerprint(self) -> str:
        """A short hash of the corpus: keys what is cached from it (a trained tokenizer)."""
        digest = hashlib.sha1()
        for caption in self.corpus():
            digest.update(caption.encode("utf-8") + b"\n")
        return digest.hexdigest()[:16]


class ImageCaptions(CaptionSource):
    """Captions that come with the images: ``captions[id]`` lists the captions of the image with caption id ``id``.
    Ids below ``num_train`` are the training split's (the corpus); ``prompt_ids`` are the ids whose first captions
    serve as fixed prompts (validation images)."""

    def __init__(self, captions: list[list[str]], num_train: int, prompt_ids: list[int]) -> None:
        self.captions = captions
        self.num_train = num_train
        self.prompt_ids = prompt_ids
        self.counts = torch.tensor([len(each) for each in captions])

    def draw(self, labels: torch.Tensor) -> list[str]:
        ids = labels.cpu().long()
        # One uniform draw per image, scaled to its number of captions: a single call to the global RNG.
        choice = (torch.rand(len(ids)) * self.counts[ids]).long()
        return [self.captions[i][k] for i, k in zip(ids.tolist(), choice.tolist())]

    def first(self, labels: torch.Tensor) -> list[str]:
        return [self.captions[i][0] for i in labels.cpu().long().tolist()]

    def corpus(self) -> list[str]:
        return [caption for each in self.captions[: self.num_train] for caption in each]

    def prompts(self, count: int) -> list[str]:
        return [self.captions[i][0] for i in self.prompt_ids[:count]]
