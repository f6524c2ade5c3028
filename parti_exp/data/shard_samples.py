"""Reading the samples of webdataset shards (img2dataset's layout: ``000000042.jpg`` with ``000000042.txt`` and
``000000042.json`` in ``00000.tar``) and turning each into a uint8 ``C x H x W`` image, its captions and its label.

Images go through the project's bounded decoder (``decode.open_image``: size-checked from the header, converted to the
configured channels) and are resized (shorter side) and center-cropped as every folder is. A sample that lacks its
image or caption, or whose image does not decode, is a ``BadSample`` naming the shard and the key.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import webdataset as wds

from parti_exp.data.captions.base import BadInput, checked_captions
from parti_exp.data.decode import open_image, pil_mode, resize_center_crop, to_chw
from parti_exp.data.shard_plan import Segment
from parti_exp.errors import BadDataError

# The members an image may be stored as, in the order they are looked for (img2dataset writes jpg by default).
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


class BadSample(ValueError):
    """A sample that cannot be used; the message names the shard and the key."""


@dataclass(frozen=True)
class SampleFormat:
    """How a sample becomes a training item: ``caption_key`` is ``txt`` (the ``.txt`` member), the name of a field
    of the ``.json`` member, or None (no captions: image models); ``label_key`` likewise ``cls`` or a ``.json``
    field, or None (every label 0)."""

    img_size: int
    channels: int
    caption_key: str | None = "txt"
    label_key: str | None = None
    num_classes: int = 1
    # Set (to ``CODES_MEMBER``) to read each sample's image tokenizer codes instead of decoding its image: shards
    # written by ``python -m parti_exp.shards encode``.
    codes_member: str | None = None


# The member ``python -m parti_exp.shards encode`` adds to each sample: its codes as ``.npy`` (``F x h x w``).
CODES_MEMBER = "codes.npy"


@dataclass
class Sample:
    image: np.ndarray  # uint8 C x H x W, or F x h x w codes (SampleFormat.codes_member)
    captions: list[str]  # empty without captions
    label: int


def segment_samples(segment: Segment) -> Iterator[dict]:
    """The raw samples (webdataset's dicts: ``__key__``, ``__url__`` and one bytes value per member) of one segment.
    The samples before ``segment.start`` are read but not decoded."""
    for index, sample in enumerate(wds.tariterators.tarfile_samples(iter([{"url": segment.url}]))):
        if index >= segment.stop:
            return
        if index >= segment.start:
            yield sample


def _where(sample: dict) -> str:
    return f"shard {sample.get('__url__')} sample {sample.get('__key__')}"


def _json_field(sample: dict, field: str, what: str) -> object:
    if "json" not in sample:
        raise BadSample(f"{_where(sample)}: no .json member to read the {what} field {field!r} from")
    try:
        metadata = json.loads(sample["json"])
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadSample(f"{_where(sample)}: its .json member is not valid JSON ({error})") from None
    if not isinstance(metadata, dict) or metadata.get(field) is None:
        raise BadSample(f"{_where(sample)}: its .json member has no {what} field {field!r}")
    return metadata[field]


def sample_captions(sample: dict, caption_key: str | None) -> list[str]:
    """The sample's caption (cleaned as every caption is), or none when ``caption_key`` is None."""
    if caption_key is None:
        return []
    if caption_key == "txt":
        if "txt" not in sample:
            raise BadSample(f"{_where(sample)}: no caption (no .txt member)")
        try:
            text = sample["txt"].decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadSample(f"{_where(sample)}: its .txt member is not UTF-8 text ({error})") from None
    else:
        text = _json_field(sample, caption_key, "caption")
        if not isinstance(text, str):
            raise BadSample(f"{_where(sample)}: the caption field {caption_key!r} is not a string: {text!r}"[:300])
    try:
        return checked_captions([text], _where(sample))
    except BadInput as error:
        raise BadSample(str(error)) from None


def sample_label(sample: dict, label_key: str | None, num_classes: int) -> int:
    if label_key is None:
        return 0
    raw = sample.get("cls") if label_key == "cls" else _json_field(sample, label_key, "label")
    try:
        label = int(raw.decode("ascii") if isinstance(raw, bytes) else raw)
    except (TypeError, ValueError, UnicodeDecodeError):
        raise BadSample(f"{_where(sample)}: no integer label in {label_key!r} (got {raw!r})"[:300]) from None
    if not 0 <= label < num_classes:
        raise BadSample(f"{_where(sample)}: label {label} is outside 0 .. data.num_classes - 1 = {num_classes - 1}")
    return label


def sample_codes(sample: dict, member: str) -> np.ndarray:
    """The ``F x h x w`` integer codes stored in ``member`` (``np.save`` bytes; never unpickled)."""
    if member not in sample:
        raise BadSample(f"{_where(sample)}: no {member} member: these are not code shards (write them with "
                        "`python -m parti_exp.shards encode`)")
    try:
        codes = np.load(io.BytesIO(sample[member]), allow_pickle=False)
    except (ValueError, OSError) as error:
        raise BadSample(f"{_where(sample)}: its {member} member is not a .npy array ({error})") from None
    if codes.ndim != 3 or codes.dtype.kind not in "iu":
        raise BadSample(f"{_where(sample)}: its {member} member is {codes.dtype} {codes.shape}, not F x h x w codes")
    return codes


def decode_sample(sample: dict, form: SampleFormat) -> Sample:
    """The sample's image (decoded, converted, resized and center-cropped) or codes, captions and label; BadSample
    when it cannot be used."""
    if form.codes_member is not None:
        codes = sample_codes(sample, form.codes_member)
        return Sample(codes, sample_captions(sample, form.caption_key),
                      sample_label(sample, form.label_key, form.num_classes))
    extension = next((ext for ext in IMAGE_EXTENSIONS if ext in sample), None)
    if extension is None:
        members = sorted(name for name in sample if not name.startswith("__"))
        raise BadSample(f"{_where(sample)}: no image (no {'/'.join(IMAGE_EXTENSIONS)} member; it has {members})")
    captions = sample_captions(sample, form.caption_key)
    label = sample_label(sample, form.label_key, form.num_classes)
    try:
        image = open_image(f"{_where(sample)} ({extension})", pil_mode(form.channels), io.BytesIO(sample[extension]))
        image = resize_center_crop(image, form.img_size)
    except BadDataError as error:
        raise BadSample(str(error)) from None
    return Sample(to_chw(image), captions, label)
