"""Code shards: webdataset shards whose samples also carry their image tokenizer codes, written once by
``python -m parti_exp.shards encode`` so that stage-2 training from shards neither decodes nor encodes an image (the
way dalle-mini streams pre-encoded codes).

Each sample keeps every member it had (image, caption, metadata: the validation and reference samples, and the
metrics, still read images) and gains ``codes.npy`` (``F x h x w`` integers: the image, and its mirror when written
with ``mirrored=true``) and ``codes.json`` (the tokenizer's weights key, the number of views, the grid). A run checks
the first sample's ``codes.json`` against its tokenizer: codes of another tokenizer are never trained on.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import webdataset as wds

from parti_exp.data.image_codes import CodeRequest, encoded_chunks
from parti_exp.data.shard_plan import Segment, count_samples, list_shards
from parti_exp.data.shard_samples import CODES_MEMBER, BadSample, SampleFormat, decode_sample, segment_samples
from parti_exp.errors import BadDataError, ConfigError

log = logging.getLogger(__name__)

CODES_INFO_MEMBER = "codes.json"


def codes_info(request: CodeRequest, views: int, grid: tuple[int, int]) -> dict:
    return {"tokenizer": request.tokenizer_key, "views": views, "grid": list(grid),
            "codebook_size": request.codebook_size}


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _batches(raw: Iterator[dict], form: SampleFormat, skip_bad: bool, size: int) -> Iterator[list[tuple]]:
    """``(raw sample, decoded image)`` pairs in batches; bad samples raise, or are dropped and logged."""
    def good() -> Iterator[tuple]:
        for sample in raw:
            try:
                yield sample, decode_sample(sample, form).image
            except BadSample as error:
                if not skip_bad:
                    raise BadDataError(f"{error}. Fix or remove the sample, or set data.skip_bad=true to leave such "
                                       "samples out of the code shards") from None
                log.warning("left out of the code shards: %s", error)

    samples = good()
    return iter(lambda: list(islice(samples, size)), [])


def encode_shards(urls, form: SampleFormat, request: CodeRequest, out_dir: Path, mirrored: bool,
                  skip_bad: bool = False) -> list[Path]:
    """Write each shard of ``urls`` to ``out_dir`` (same file name) with its samples' codes added; return them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written, info = [], None
    for url in list_shards(urls):
        target = out_dir / Path(url.split("::")[0]).name
        if target.resolve() == Path(url).expanduser().resolve():
            raise ConfigError(f"out_dir={out_dir} holds the input shard {url}: write the code shards elsewhere")
        raw = segment_samples(Segment(url, 0, count_samples(url)))
        with wds.TarWriter(str(target)) as sink:
            for batch in _batches(raw, form, skip_bad, request.batch_size):
                images = np.stack([image for _, image in batch])
                codes = next(encoded_chunks(images, request, mirrored))
                info = info or codes_info(request, codes.shape[1], tuple(codes.shape[2:]))
                for (sample, _), sample_codes in zip(batch, codes):
                    members = {name: value for name, value in sample.items() if not name.startswith("__")}
                    sink.write({"__key__": sample["__key__"], **members, CODES_MEMBER: npy_bytes(sample_codes),
                                CODES_INFO_MEMBER: json.dumps(info).encode()})
        written.append(target)
    if info is not None:
        (out_dir / CODES_INFO_MEMBER).write_text(json.dumps(info, indent=2))
    return written


def check_code_shards(urls, request: CodeRequest, mirrored: bool, key: str = "data.urls") -> None:
    """Refuse shards without codes, or with another tokenizer's codes, or without the mirrors ``data.hflip`` needs."""
    first = list_shards(urls, key)[0]
    sample = next(segment_samples(Segment(first, 0, 1)), None)
    remedy = ("write code shards with `python -m parti_exp.shards encode data=webdataset data.urls=<the image shards> "
              "tokenizer_ckpt=<this run's model.tokenizer_ckpt> out_dir=DIR` and train on those")
    if sample is None or CODES_INFO_MEMBER not in sample:
        raise ConfigError(f"model.code_cache=true with {key}={urls!r}: its first sample has no {CODES_MEMBER}; "
                          f"{remedy}")
    info = json.loads(sample[CODES_INFO_MEMBER])
    if info.get("tokenizer") != request.tokenizer_key:
        raise ConfigError(f"{key}={urls!r} holds the codes of another image tokenizer (weights key "
                          f"{info.get('tokenizer')}, this run's is {request.tokenizer_key}); {remedy}")
    if mirrored and info.get("views") != 2:
        raise ConfigError(f"{key}={urls!r} holds no codes of mirror images, which data.hflip=true needs: encode with "
                          "mirrored=true, or set data.hflip=false")
