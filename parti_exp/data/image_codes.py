"""The frozen image tokenizer's codes of a dataset, computed once (``model.code_cache=true``).

Stage 2 of text-to-image reads every image as the codes of a frozen stage-1 tokenizer. Encoding them again at every
step spends most of a small model's step on a forward pass whose result never changes; this cache encodes each image
once (and its mirror image too when the data flips images), stores the codes as integers beside the image cache, and
serves them instead of pixels.

An entry's name carries a hash of the tokenizer's weights and of the images' bytes, so a different tokenizer, image
size, crop, source file or split selects a new entry: a stale entry is never read. Entries are written and locked as
the decoded-image cache's are (``UInt8Cache``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from parti_exp.data.uint8_cache import UInt8Cache
from parti_exp.runtime.torch_utils import tensor_of

# Bump when the way codes are computed changes (not when a tokenizer changes: its weights are in the key).
CODES_FORMAT = 1
HASH_CHUNK_BYTES = 2**24


@dataclass(frozen=True)
class CodeRequest:
    """What a token model hands its data to be served codes: ``encode`` maps float images in [-1, 1]
    (``B x C x H x W`` on ``device``) to ``B x h x w`` code indices."""

    encode: Callable[[torch.Tensor], torch.Tensor]
    tokenizer_key: str
    codebook_size: int
    directory: Path
    device: torch.device
    batch_size: int = 256


def weights_key(net: nn.Module) -> str:
    """A hash of a net's parameters and buffers (names, dtypes, shapes, values): the same weights, the same key,
    wherever they were loaded from (a tokenizer run's checkpoint or the stage-2 checkpoint that carries it)."""
    digest = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}\0{value.dtype}\0{tuple(value.shape)}\n".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def images_key(images: np.ndarray) -> str:
    """A hash of a uint8 image array's shape and bytes, read in chunks so a memmapped array is never copied whole."""
    digest = hashlib.sha256(f"{images.shape}".encode())
    flat = images.reshape(len(images), -1)
    rows = max(1, HASH_CHUNK_BYTES // max(1, flat.shape[1]))
    for start in range(0, len(flat), rows):
        digest.update(np.ascontiguousarray(flat[start:start + rows]).data)
    return digest.hexdigest()[:16]


def code_dtype(codebook_size: int) -> np.dtype:
    return np.dtype(np.int16) if codebook_size <= np.iinfo(np.int16).max + 1 else np.dtype(np.int32)


class CodeCache(UInt8Cache):
    """Entries ``<name>.codes.npy`` (``N x F x h x w`` integers, ``F`` = 2 with mirror images) + ``.labels.npy``."""

    items = "codes"
    activity = "encoding images into"

    def __init__(self, directory: Path | str, codebook_size: int) -> None:
        super().__init__(directory)
        self.dtype = code_dtype(codebook_size)


def encoded_chunks(images: np.ndarray, request: CodeRequest, mirrored: bool) -> Iterator[np.ndarray]:
    """``n x F x h x w`` code chunks of uint8 ``images``: each image, and its left-right mirror if ``mirrored``."""
    dtype = code_dtype(request.codebook_size)
    for start in range(0, len(images), request.batch_size):
        batch = torch.from_numpy(np.array(images[start:start + request.batch_size])).to(request.device)
        batch = batch.float().div_(127.5).sub_(1.0)
        with torch.no_grad():
            views = [request.encode(batch)] + ([request.encode(batch.flip(-1))] if mirrored else [])
        yield torch.stack(views, dim=1).cpu().numpy().astype(dtype)


def cached_codes(dataset: str, split: str, images: np.ndarray, labels: np.ndarray, request: CodeRequest,
                 mirrored: bool) -> np.ndarray:
    """The codes of ``images`` (read-only memmap, ``N x F x h x w``), encoded now if no entry has them."""
    cache = CodeCache(request.directory, request.codebook_size)
    name = "-".join([dataset, split, f"codes{CODES_FORMAT}", f"views{2 if mirrored else 1}",
                     f"tokenizer{request.tokenizer_key}", f"images{images_key(images)}"])
    cached = cache.load(name)
    if cached is None:
        with cache.building(name):
            # Another process may have built it while this one waited for the lock.
            cached = cache.load(name)
            if cached is None:
                with torch.no_grad():
                    grid = request.encode(torch.zeros(1, *images.shape[1:], device=request.device)).shape[1:]
                cached = cache.build(name, labels, (2 if mirrored else 1, *grid),
                                     encoded_chunks(images, request, mirrored))
    return cached[0]


class CodeDataset(Dataset):
    """``(codes[i], labels[i])`` over an ``N x F x h x w`` code array; batched fetch via ``__getitems__``."""

    def __init__(self, codes: np.ndarray, labels: np.ndarray) -> None:
        if codes.ndim != 4 or len(labels) != len(codes):
            raise ValueError(f"codes must be N x F x h x w with one label row each: {codes.shape}, {labels.shape}")
        self.codes = codes
        self.labels = labels

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.array(self.codes[index])), tensor_of(self.labels[index])

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        # Sorted, as UInt8ImageDataset: the same batch in the same order, so a run with codes sees what a run with
        # images sees.
        index = np.sort(np.asarray(indices))
        return torch.from_numpy(self.codes[index]), tensor_of(self.labels[index])


def pick_views(codes: torch.Tensor, training: bool, mirrored: bool) -> torch.Tensor:
    """``B x h x w`` int64 codes from a ``B x F x h x w`` batch: in training with mirror images, a random half of the
    batch takes its mirror's codes, one coin per image from the same draw ``random_hflip`` makes, so the random
    stream (and the captions drawn after it) match a run that flips pixels."""
    codes = codes.long()
    if not (training and mirrored):
        return codes[:, 0]
    flip = torch.rand(codes.shape[0], device=codes.device) < 0.5
    return torch.where(flip[:, None, None], codes[:, 1], codes[:, 0])
