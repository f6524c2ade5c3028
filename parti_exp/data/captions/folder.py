"""A folder of images with their captions (``data=captions data.path=DIR``), in either layout people already use:

- Hugging Face *imagefolder*: the images plus ``metadata.jsonl`` (one JSON object per line) or ``metadata.csv``
  with a ``file_name`` column (relative to the metadata file) and a ``text`` column: a string, or in JSONL a list
  of strings (several captions of one image);
- sidecar text files: ``photo_001.jpg`` beside ``photo_001.txt``, one caption per line (blank lines ignored).

``train/`` and ``validation/`` (or ``val/``) subfolders, each in one of the layouts, are the splits; without them
the validation split is a seeded share of the images (``val_fraction``, ``split_seed``).
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

from parti_exp.data.captions.base import (
    BadInput,
    BadInputLog,
    CaptionedDataModule,
    CaptionedImage,
    checked_captions,
    seeded_split,
)
from parti_exp.errors import BadDataError, MissingInputError
from parti_exp.runtime.validation import require

METADATA_FILES = ("metadata.jsonl", "metadata.csv")
VAL_FOLDERS = ("validation", "val")


def _images_below(folder: Path) -> list[Path]:
    """Image files anywhere under ``folder``, sorted; hidden folders (.cache) are skipped."""
    found = []
    for directory, subdirectories, files in os.walk(folder, followlinks=True):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        found += [Path(directory, name) for name in files if has_file_allowed_extension(name, IMG_EXTENSIONS)]
    return sorted(found)


def _metadata_rows(path: Path) -> list[tuple[str, object]]:
    """``(where, row)`` for each row of a metadata file, ``where`` naming the file and line."""
    if path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                where = f"{path} line {number}"
                try:
                    rows.append((where, json.loads(line)))
                except json.JSONDecodeError as error:
                    rows.append((where, BadInput(where, f"not valid JSON ({error.msg})")))
        return rows
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = {"file_name", "text"} - set(reader.fieldnames or ())
        if missing:
            raise BadDataError(f"{path}: no {' and no '.join(sorted(missing))} column (columns: {reader.fieldnames}); "
                               "metadata.csv needs file_name and text")
        # Line 1 is the header.
        return [(f"{path} line {number}", row) for number, row in enumerate(reader, start=2)]


def _metadata_entry(folder: Path, where: str, row: object) -> CaptionedImage:
    if isinstance(row, BadInput):
        raise row
    if not isinstance(row, dict) or not isinstance(row.get("file_name"), str) or "text" not in row:
        raise BadInput(where, 'expected an object with "file_name" (a string) and "text" (a string or a list of '
                              f"strings), got {json.dumps(row, ensure_ascii=False)[:200]}")
    text = row["text"]
    texts = [text] if isinstance(text, str) else text
    if not isinstance(texts, list) or not all(isinstance(each, str) for each in texts):
        raise BadInput(where, f'"text" must be a string or a list of strings, got {json.dumps(text)[:200]}')
    path = folder / row["file_name"]
    if not path.resolve().is_relative_to(folder.resolve()):
        raise BadInput(where, f"file_name {row['file_name']!r} lies outside {folder}")
    if not path.is_file():
        raise BadInput(where, f"file_name {row['file_name']!r} does not exist ({path})")
    return CaptionedImage(path, checked_captions(texts, where))


def _sidecar_entry(image: Path) -> CaptionedImage:
    text_file = image.with_suffix(".txt")
    if not text_file.is_file():
        raise BadInput(str(image), f"the image has no caption (no {text_file.name} beside it)")
    lines = [line for line in text_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return CaptionedImage(image, checked_captions(lines, str(text_file)))


class CaptionsDataModule(CaptionedDataModule):
    def __init__(
        self,
        path: str | Path,
        root: str | Path,
        img_size: int = 64,
        channels: int = 3,
        num_classes: int = 1,
        val_fraction: float = 0.05,
        split_seed: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        decode_workers: int | None = None,
        hflip: bool = False,
        cache_dir: str | Path | None = None,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(
            root, img_size, channels, num_classes, batch_size, num_workers, hflip, cache_dir, decode_workers, skip_bad
        )
        require(0.0 < val_fraction < 1.0, "data.val_fraction", f"must be in (0, 1), got {val_fraction}")
        self.path = Path(path).expanduser()
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        # The folder's name in the cache entries' names tells a person whose entries they are.
        self.name = "captions_" + re.sub(r"[^A-Za-z0-9_.]+", "_", self.path.resolve().name)

    def ensure_source(self) -> None:
        if not self.path.is_dir():
            raise MissingInputError(
                f"data.path={self.path} is not a directory; set data.path=/path/to/captioned/images (images with a "
                "metadata.jsonl or metadata.csv, or a .txt of captions beside each image)"
            )

    def source_base(self) -> Path:
        return self.path

    def _split_folders(self) -> dict[str, Path] | None:
        val = next((self.path / name for name in VAL_FOLDERS if (self.path / name).is_dir()), None)
        if (self.path / "train").is_dir() and val is not None:
            return {"train": self.path / "train", "val": val}
        return None

    @staticmethod
    def _metadata_file(folder: Path) -> Path | None:
        return next((folder / name for name in METADATA_FILES if (folder / name).is_file()), None)

    def read_listing(self, split: str, bad: BadInputLog) -> list[CaptionedImage]:
        folders = self._split_folders()
        folder = folders[split] if folders else self.path
        entries = []
        metadata = self._metadata_file(folder)
        if metadata is not None:
            for where, row in _metadata_rows(metadata):
                try:
                    entries.append(_metadata_entry(metadata.parent, where, row))
                except BadInput as error:
                    bad.add(error)
        else:
            for image in _images_below(folder):
                try:
                    entries.append(_sidecar_entry(image))
                except BadInput as error:
                    bad.add(error)
        if folders is None:
            if len(entries) < 2:
                raise MissingInputError(f"{folder}: found {len(entries)} captioned images, need at least 2 for a "
                                        "train and a val split")
            entries = seeded_split(entries, split, self.val_fraction, self.split_seed)
        return entries

    def caption_files(self, split: str) -> list[Path]:
        folders = self._split_folders()
        folder = folders[split] if folders else self.path
        metadata = self._metadata_file(folder)
        if metadata is not None:
            return [metadata]
        return [entry.path.with_suffix(".txt") for entry in self.listing(split)]
