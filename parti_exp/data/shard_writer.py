"""Writing any dataset the project reads as webdataset shards in img2dataset's layout, so it can be streamed with
``data=webdataset``: ``<out>/<split>/00000.tar`` holding ``000000000.jpg`` (or ``.png``), ``000000000.txt`` (the
image's first caption), ``000000000.json`` (``key``, ``caption`` and, for labelled data, ``label``) and, for
labelled data, ``000000000.cls``; ``00000_stats.json`` beside each shard, as img2dataset writes it.

The images are written as the DataModule serves them (resized and cropped to ``data.img_size``, uint8), so a set
written at 64 px trains at 64 px.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from PIL import Image

from parti_exp.data.base import ImageDataModule
from parti_exp.errors import ConfigError

FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}


def image_bytes(chw: np.ndarray, image_format: str, quality: int) -> bytes:
    """uint8 ``C x H x W`` (C = 1 or 3) encoded as ``image_format``."""
    hwc = chw[0] if chw.shape[0] == 1 else chw.transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(hwc)).save(buffer, FORMATS[image_format], quality=quality)
    return buffer.getvalue()


def write_split(
    datamodule: ImageDataModule, split: str, out_dir: Path, maxcount: int = 10_000, image_format: str = "jpg",
    quality: int = 95,
) -> list[Path]:
    """Write ``split`` (``train`` or ``val``) of ``datamodule`` as shards in ``out_dir``; return the shards."""
    if image_format not in FORMATS:
        raise ConfigError(f"image_format={image_format!r}: must be one of {', '.join(FORMATS)}")
    datamodule.setup("fit")
    dataset = datamodule.train_set if split == "train" else datamodule.val_set
    labels = torch.as_tensor(np.asarray(dataset.labels))
    captions = datamodule.caption_source().first(labels)
    labelled = datamodule.num_classes > 1
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[int, int] = {}
    with wds.ShardWriter(str(out_dir / "%05d.tar"), maxcount=maxcount, verbose=0) as sink:
        for index in range(len(dataset.images)):
            key = f"{index:09d}"
            metadata = {"key": key, "caption": captions[index], **({"label": int(labels[index])} if labelled else {})}
            sample = {"__key__": key, image_format: image_bytes(np.asarray(dataset.images[index]), image_format,
                                                                 quality),
                      "txt": captions[index], "json": metadata}
            if labelled:
                sample["cls"] = int(labels[index])
            sink.write(sample)
            counts[index // maxcount] = counts.get(index // maxcount, 0) + 1
    for shard, count in counts.items():
        stats = {"count": count, "successes": count, "failed_to_download": 0, "failed_to_resize": 0}
        (out_dir / f"{shard:05d}_stats.json").write_text(json.dumps(stats, indent=2))
    return [out_dir / f"{shard:05d}.tar" for shard in sorted(counts)]
