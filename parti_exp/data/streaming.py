"""``data=webdataset``: training images (and captions) streamed from webdataset tar shards, as img2dataset writes
them, instead of the uint8 cache.

The shards are listed and counted once when the run starts (``shard_plan``). Each epoch, every DataLoader worker of
every rank reads its own piece of the epoch's plan (a pure function of the seed, the epoch, the ranks, the workers
and the batch size), shuffles it in a buffer seeded by (seed, epoch, rank, worker), decodes it and yields whole
batches; the DataLoader takes one batch from each worker in turn, so the batch sequence is a function of the config.
A run resumed from a checkpoint skips the batches the checkpoint had consumed (their samples are read, not decoded),
with the same number of workers.

What the metrics and the grids compare with stays in memory: the validation samples (``data.val_samples``, from
``data.val_urls`` or held out at the end of the shard set) and a reference sample of the training set
(``data.reference_samples``, the first ones in listing order): ``val_set`` and ``train_set``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from itertools import chain, islice

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from parti_exp.data.base import ImageDataModule, UInt8ImageDataset
from parti_exp.data.captions.sources import CaptionSource
from parti_exp.data.captions.streamed import StreamedCaptions, caption_rows, captions_of_rows
from parti_exp.data.code_shards import check_code_shards
from parti_exp.data.epoch_sampler import process_group_rank_and_size
from parti_exp.data.image_codes import CodeDataset, CodeRequest, cached_codes
from parti_exp.data.shard_plan import (
    Segment,
    batches_per_worker,
    count_samples,
    epoch_pieces,
    held_out_segments,
    list_shards,
    training_segments,
)
from parti_exp.data.shard_samples import (
    CODES_MEMBER,
    BadSample,
    Sample,
    SampleFormat,
    decode_sample,
    sample_captions,
    segment_samples,
)
from parti_exp.errors import BadDataError, ConfigError
from parti_exp.runtime.validation import is_int_at_least, require

log = logging.getLogger(__name__)


def batch_of(samples: list[Sample], with_captions: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 ``B x C x H x W``, labels): class labels, or the captions as byte rows (``captions.streamed``)."""
    images = torch.from_numpy(np.stack([sample.image for sample in samples]))
    if with_captions:
        return images, caption_rows([sample.captions for sample in samples])
    return images, torch.tensor([sample.label for sample in samples], dtype=torch.int64)


class SkipLog:
    """Raises a bad sample's error unless ``skip_bad``; counts the skipped ones."""

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.count = 0
        self.first = ""

    def add(self, error: BadSample) -> None:
        if not self.skip_bad:
            raise BadDataError(f"{error}. Fix or remove the sample, or set data.skip_bad=true to skip such samples")
        self.first = self.first or str(error)
        self.count += 1


def decoded(raw: Iterator[dict], form: SampleFormat, skips: SkipLog) -> Iterator[Sample]:
    for sample in raw:
        try:
            yield decode_sample(sample, form)
        except BadSample as error:
            skips.add(error)


class ShardStream(IterableDataset):
    """One epoch of whole batches for this rank, from its workers' pieces of the epoch's plan (see module doc)."""

    def __init__(
        self,
        segments: list[Segment],
        form: SampleFormat,
        batch_size: int,
        workers: int,
        seed: int,
        shuffle_buffer: int,
        skip_bad: bool,
        rank: int,
        ranks: int,
    ) -> None:
        self.segments = segments
        self.form = form
        self.batch_size = batch_size
        self.workers = max(1, workers)
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.skip_bad = skip_bad
        self.rank = rank
        self.ranks = ranks
        self.epoch = 0
        self.skip_batches = 0  # of this rank's sequence, once: the batches a resumed checkpoint had consumed
        total = sum(map(len, segments))
        self.per_worker = batches_per_worker(total, ranks, self.workers, batch_size)
        if self.per_worker < 1:
            raise ConfigError(
                f"the shards hold {total} training samples, fewer than one batch for every worker of every rank "
                f"(ranks x workers x data.batch_size = {ranks} x {self.workers} x {batch_size}): lower "
                "data.batch_size or data.num_workers, or add shards"
            )

    def __len__(self) -> int:
        return self.per_worker * self.workers

    def worker_samples(self, worker: int) -> Iterator[dict]:
        """This worker's piece of the epoch, shuffled, not yet decoded."""
        piece = epoch_pieces(self.segments, self.seed, self.epoch, self.ranks, self.workers, self.batch_size)
        raw = chain.from_iterable(segment_samples(s) for s in piece[self.rank * self.workers + worker])
        if self.shuffle_buffer <= 1:
            return raw
        seed = int(np.random.default_rng([self.seed, self.epoch, self.rank, worker]).integers(2**63))
        return wds.filters._shuffle(raw, self.shuffle_buffer, self.shuffle_buffer, seed=seed)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        # The DataLoader serves batch j of an epoch from process j % workers. Resumed after skip_batches, its first
        # process must serve what batch skip_batches was served by: each process plays the piece of the worker
        # whose turn it would have been.
        worker = ((0 if info is None else info.id) + self.skip_batches) % self.workers
        # Of the first skip_batches batches, this many were this worker's.
        done = max(0, self.skip_batches - worker + self.workers - 1) // self.workers
        samples = self.worker_samples(worker)
        skips = SkipLog(self.skip_bad)
        if not self.skip_bad:
            # Without skipping, every sample before the resume point was good: read past them undecoded.
            for _ in islice(samples, done * self.batch_size):
                pass
        good = decoded(samples, self.form, skips)
        with_captions = self.form.caption_key is not None
        # With skipping, the batches done held the good samples among more: they are found the same way (decoded).
        made, kept = (0 if self.skip_bad else done), []
        for batch in iter(lambda: list(islice(good, self.batch_size)), []):
            if len(batch) < self.batch_size or made == self.per_worker:
                break
            kept = kept or batch
            made += 1
            if made > done:
                yield batch_of(batch, with_captions)
        if skips.count:
            log.warning("epoch %d, rank %d, worker %d: skipped %d bad samples (data.skip_bad=true), the first: %s",
                        self.epoch, self.rank, worker, skips.count, skips.first)
        # Every rank must make the same number of steps: what skipped samples left short is made up of repeats of
        # the worker's first batch of the epoch.
        for index in range(made, self.per_worker):
            if not kept:
                raise BadDataError(f"epoch {self.epoch}, rank {self.rank}, worker {worker}: no good sample in its "
                                   "piece of the shards (every one was skipped as bad)")
            log.warning("epoch %d, rank %d, worker %d: a batch repeats the worker's first batch of the epoch, as "
                        "skipped samples left its piece short", self.epoch, self.rank, worker)
            if index >= done:
                yield batch_of(kept, with_captions)


class StreamLoader(DataLoader):
    """A DataLoader over a ``ShardStream`` that tells it the epoch (and a resume point) as each epoch starts:
    workers are started afresh each epoch (not persistent) and so read the stream as it is then."""

    def __init__(self, stream: ShardStream, epoch_of: Callable[[], int], take_resume: Callable[[], tuple | None],
                 **kwargs) -> None:
        super().__init__(stream, batch_size=None, **kwargs)
        self.epoch_of = epoch_of
        self.take_resume = take_resume

    def __iter__(self):
        resume = self.take_resume()
        self.dataset.epoch, self.dataset.skip_batches = resume if resume is not None else (self.epoch_of(), 0)
        return super().__iter__()


class WebDatasetDataModule(ImageDataModule):
    def __init__(
        self,
        urls: str | Sequence[str],
        val_urls: str | Sequence[str] | None = None,
        name: str = "webdataset",
        img_size: int = 64,
        channels: int = 3,
        num_classes: int = 1,
        caption_key: str | None = "txt",
        label_key: str | None = None,
        val_samples: int = 256,
        reference_samples: int = 2048,
        corpus_samples: int = 100_000,
        shuffle_buffer: int = 1000,
        skip_bad: bool = False,
        batch_size: int = 64,
        num_workers: int = 0,
        hflip: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(img_size, channels, num_classes, batch_size, num_workers, hflip)
        for key, value in (("val_samples", val_samples), ("reference_samples", reference_samples),
                           ("corpus_samples", corpus_samples), ("shuffle_buffer", shuffle_buffer)):
            require(is_int_at_least(value, 1), f"data.{key}", f"must be a positive integer, got {value!r}")
        require(caption_key is None or num_classes == 1, "data.num_classes",
                f"must be 1 with captions (data.caption_key={caption_key!r}: the labels carry the captions); set "
                "data.caption_key=null to train on class labels")
        require(label_key is not None or num_classes == 1, "data.label_key",
                f"names where the class label is (cls, or a .json field) when data.num_classes={num_classes} > 1")
        self.urls = urls
        self.val_urls = val_urls
        self.name = name
        self.form = SampleFormat(img_size, channels, caption_key, label_key, num_classes)
        self.stream_form = self.form  # the training stream's: codes instead of images after serve_codes
        self.val_samples = val_samples
        self.reference_samples = reference_samples
        self.corpus_samples = corpus_samples
        self.shuffle_buffer = shuffle_buffer
        self.skip_bad = skip_bad
        self.seed = seed
        self.segments: list[Segment] | None = None
        self._val_segments: list[Segment] = []
        self._captions: StreamedCaptions | None = None

    def check_inputs(self) -> None:
        list_shards(self.urls)
        if self.val_urls is not None:
            list_shards(self.val_urls, "data.val_urls")

    def _read(self, segments: list[Segment], count: int, what: str) -> UInt8ImageDataset:
        """The first ``count`` good samples of ``segments`` (in order), decoded, in memory."""
        skips = SkipLog(self.skip_bad)
        samples = list(islice(decoded(chain.from_iterable(map(segment_samples, segments)), self.form, skips), count))
        if skips.count:
            log.warning("%s: skipped %d bad samples (data.skip_bad=true), the first: %s", what, skips.count,
                        skips.first)
        if not samples:
            raise BadDataError(f"{what}: no good sample in the shards")
        images, labels = batch_of(samples, self.form.caption_key is not None)
        return UInt8ImageDataset(images.numpy(), labels.numpy())

    def setup(self, stage: str | None = None) -> None:
        if self.segments is not None:
            return
        urls = list_shards(self.urls)
        counts = [count_samples(url) for url in urls]
        if self.val_urls is None:
            self.segments = training_segments(urls, counts, self.val_samples)
            self._val_segments = held_out_segments(urls, counts, self.val_samples)
        else:
            self.segments = training_segments(urls, counts, 0)
            val_urls = list_shards(self.val_urls, "data.val_urls")
            self._val_segments = [Segment(url, 0, count_samples(url)) for url in val_urls]
        log.info("data=webdataset: %d training samples in %d shards", sum(map(len, self.segments)), len(urls))
        self.val_set = self._read(self._val_segments, self.val_samples, "the validation samples")
        self.train_set = self._read(self.segments, self.reference_samples, "the reference training samples")

    def training_images(self) -> int:
        """Samples of the training shards (``CountsTrainingImages``; ``train_set`` holds only the reference ones)."""
        self.setup()
        return sum(map(len, self.segments))

    def _corpus(self) -> list[str]:
        """The captions of the first ``corpus_samples`` training samples (read without decoding their images)."""
        corpus: list[str] = []
        for sample in islice(chain.from_iterable(map(segment_samples, self.segments)), self.corpus_samples):
            try:
                corpus += sample_captions(sample, self.form.caption_key)
            except BadSample as error:
                SkipLog(self.skip_bad).add(error)
        return corpus

    def serve_codes(self, request: CodeRequest) -> None:
        """Train on the codes that ``python -m parti_exp.shards encode`` stored in the shards (checked against the
        run's tokenizer); the few validation samples, which stay in memory, are encoded here (and cached)."""
        self.setup()
        check_code_shards(self.urls, request, self.hflip)
        self.stream_form = replace(self.form, codes_member=CODES_MEMBER)
        codes = cached_codes(self.name, "val", self.val_set.images, self.val_set.labels, request, mirrored=False)
        self._code_sets = {"val": CodeDataset(codes, self.val_set.labels)}

    def caption_source(self) -> CaptionSource:
        require(self.form.caption_key is not None, "data.caption_key",
                "is null: this data has no captions; set data.caption_key=txt (the .txt member) or a .json field")
        self.setup()
        if self._captions is None:
            prompts = [captions[0] for captions in captions_of_rows(torch.from_numpy(self.val_set.labels))]
            self._captions = StreamedCaptions(self._corpus(), prompts)
        return self._captions

    def _ranks(self) -> tuple[int, int]:
        if self.trainer is not None:
            return self.trainer.global_rank, self.trainer.world_size
        return process_group_rank_and_size()

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def state_dict(self) -> dict[str, int]:
        # The pieces an epoch is cut into depend on the number of workers: a resume mid-epoch needs the same count.
        state = super().state_dict()
        return {**state, "stream_workers": max(1, self.num_workers)} if state else state

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        super().load_state_dict(state_dict)
        saved = state_dict.get("stream_workers")
        if saved is not None and int(state_dict.get("batches_done", 0)) > 0 and saved != max(1, self.num_workers):
            raise ConfigError(
                f"the checkpoint stopped mid-epoch with data.num_workers={saved if saved > 1 else '0 or 1'}, this run "
                f"has data.num_workers={self.num_workers}: the shards of an epoch are cut into one piece per worker, "
                "so another count would repeat and skip samples of the interrupted epoch. Resume with "
                f"data.num_workers={saved if saved > 1 else 0}; a checkpoint written at an epoch's end resumes with "
                "any count"
            )

    def _take_resume(self) -> tuple[int, int] | None:
        resume, self._resume_position = self._resume_position, None
        ranks = self._ranks()[1]
        if resume is not None and resume[1] and self._resume_world_size not in (None, ranks):
            # Each rank's position is in its own sequence of shards (ranks x workers): not mappable to other ranks.
            raise ConfigError(
                f"data=webdataset: the checkpoint stopped in the middle of epoch {resume[0]} with "
                f"{self._resume_world_size} processes, this run has {ranks}; a stream cannot be re-sharded mid-epoch. "
                "Resume with the same trainer.devices x trainer.num_nodes, or from a checkpoint written at an epoch's "
                "end (epoch_NNNN.ckpt)"
            )
        return resume

    def train_dataloader(self) -> DataLoader:
        self.setup()
        rank, ranks = self._ranks()
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0)) if self.seed is None else self.seed
        stream = ShardStream(self.segments, self.stream_form, self.batch_size, self.num_workers, seed,
                             self.shuffle_buffer, self.skip_bad, rank, ranks)
        return StreamLoader(stream, self._epoch, self._take_resume, num_workers=self.num_workers,
                            pin_memory=self.pin_memory and torch.cuda.is_available())

