"""Which samples of a shard set each DataLoader worker of each DDP rank reads in an epoch: a pure function of the
shard list, their sample counts, (seed, epoch), the number of ranks and workers, and the batch size.

The shards are listed and counted once (``list_shards``, ``count_samples``). An epoch's plan shuffles the shard order
with ``seed + epoch``, lays the training samples of all shards end to end in that order, and cuts the line into
``ranks x workers`` equal pieces, each a whole number of batches. A piece may begin or end inside a shard, so fewer
shards than ranks x workers, or shards of uneven sizes, lose nothing: a reader skips the start of its first shard
(reading, not decoding, the samples before its piece). Every sample is in at most one piece; what does not fill a
whole batch of every worker, fewer than ``ranks x workers x batch_size`` samples at the end of the line, is left out
of that epoch (a different set each epoch, as the shard order changes), so that every rank makes the same number of
steps.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import webdataset as wds

from parti_exp.errors import ConfigError, MissingInputError


@dataclass(frozen=True)
class Segment:
    """Samples ``start .. stop - 1`` (in the shard's own order) of the shard at ``url``."""

    url: str
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


def list_shards(urls: str | Sequence[str], key: str = "data.urls") -> list[str]:
    """The shards ``urls`` names: a brace pattern (``/data/{00000..00331}.tar``), a directory (its ``*.tar`` files,
    sorted; img2dataset's ``_stats.json`` and ``.parquet`` beside them are not shards), or a list of either."""
    found: list[str] = []
    for each in [urls] if isinstance(urls, str) else list(urls):
        each = str(each)
        if "://" not in each and not each.startswith("pipe:") and Path(each).expanduser().is_dir():
            found += sorted(str(path) for path in Path(each).expanduser().glob("*.tar"))
        else:
            found += [os.path.expanduser(url) for url in wds.shardlists.expand_urls(each)]
    if not found:
        raise MissingInputError(f"{key}={urls!r} names no shard: give a folder of .tar shards (img2dataset's output "
                                "folder), a brace pattern such as /data/{00000..00331}.tar, or a list of them")
    missing = [url for url in found if "://" not in url and not url.startswith("pipe:") and not Path(url).is_file()]
    if missing:
        raise MissingInputError(f"{key}: shard {missing[0]} does not exist ({len(missing)} of the {len(found)} shards "
                                f"{key}={urls!r} names are missing)")
    return found


def sample_key(member: str) -> str | None:
    """The sample a tar member belongs to, as webdataset groups them (``dir/000000042.jpg`` -> ``dir/000000042``);
    None for what is no sample's (webdataset's ``__meta__`` files)."""
    if os.path.basename(member).startswith("__"):
        return None
    key, _ = wds.tariterators.base_plus_ext(member)
    return key


def count_samples(url: str) -> int:
    """The number of samples in the shard at ``url``: its members' headers are read, their contents skipped (a local
    file is seeked over; a stream has to be read through once)."""
    keys = []
    with wds.gopen(url, "rb") as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            if member.isfile() and (key := sample_key(member.name)) is not None and (not keys or keys[-1] != key):
                keys.append(key)
    return len(keys)


def training_segments(urls: list[str], counts: list[int], held_out: int) -> list[Segment]:
    """Every shard as a segment, less the last ``held_out`` samples of the set (in listing order): those are the
    validation samples when no ``data.val_urls`` is given."""
    total = sum(counts)
    if held_out >= total:
        raise ConfigError(f"the shards hold {total} samples, not more than the {held_out} held out for validation "
                          "(data.val_samples): lower data.val_samples, or give data.val_urls")
    segments, left = [], total - held_out
    for url, count in zip(urls, counts):
        take = min(count, left)
        if take > 0:
            segments.append(Segment(url, 0, take))
        left -= take
    return segments


def held_out_segments(urls: list[str], counts: list[int], held_out: int) -> list[Segment]:
    """The last ``held_out`` samples of the set, in listing order."""
    segments, skip = [], sum(counts) - held_out
    for url, count in zip(urls, counts):
        if skip < count:
            segments.append(Segment(url, max(0, skip), count))
        skip = max(0, skip - count)
    return segments


def batches_per_worker(total: int, ranks: int, workers: int, batch_size: int) -> int:
    """How many whole batches each worker of each rank reads in an epoch of ``total`` samples."""
    return total // (ranks * workers * batch_size)


def epoch_pieces(
    segments: list[Segment], seed: int, epoch: int, ranks: int, workers: int, batch_size: int, shuffle: bool = True
) -> list[list[Segment]]:
    """``ranks x workers`` pieces of equal length (piece ``rank * workers + worker``), each a whole number of
    batches, cut from the segments laid end to end in the epoch's shard order."""
    order = np.random.default_rng([seed, epoch]).permutation(len(segments)) if shuffle else range(len(segments))
    line = [segments[i] for i in order]
    size = batches_per_worker(sum(map(len, segments)), ranks, workers, batch_size) * batch_size
    return [_cut(line, index * size, size) for index in range(ranks * workers)]


def _cut(line: list[Segment], begin: int, size: int) -> list[Segment]:
    """Samples ``begin .. begin + size - 1`` of the segments laid end to end, as segments."""
    piece, offset = [], 0
    for segment in line:
        lo, hi = max(begin, offset), min(begin + size, offset + len(segment))
        if lo < hi:
            piece.append(Segment(segment.url, segment.start + lo - offset, segment.start + hi - offset))
        offset += len(segment)
    return piece
