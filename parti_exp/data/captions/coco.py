"""MS-COCO captions (2014 or 2017) in the layout the official archives unpack to, under ``data.path``::

    annotations/captions_train2017.json   annotations/captions_val2017.json
    train2017/000000000009.jpg ...        val2017/000000000139.jpg ...

(``2014``: ``captions_train2014.json``, ``train2014/COCO_train2014_000000000009.jpg``, ...). About five captions per
image; train = the train set, val = the val set. Images are resized (shorter side to ``img_size``), center-cropped
and converted to RGB. The archives cannot be downloaded here: unpack ``annotations_trainval{year}.zip``,
``train{year}.zip`` and ``val{year}.zip`` from cocodataset.org into ``data.path``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from parti_exp.data.captions.base import BadInput, BadInputLog, CaptionedDataModule, CaptionedImage, checked_captions
from parti_exp.errors import BadDataError, MissingInputError
from parti_exp.runtime.validation import require

YEARS = (2017, 2014)
SPLIT_FILES = {"train": "train", "val": "val"}


def annotation_file(root: Path, split: str, year: int) -> Path:
    return root / "annotations" / f"captions_{SPLIT_FILES[split]}{year}.json"


class COCODataModule(CaptionedDataModule):
    name = "coco"

    def __init__(
        self,
        path: str | Path,
        root: str | Path,
        year: int | None = None,
        img_size: int = 64,
        channels: int = 3,
        num_classes: int = 1,
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
        require(year is None or year in YEARS, "data.year",
                f"must be one of {YEARS} or null (whichever is there), got {year!r}")
        self.path = Path(path).expanduser()
        self.requested_year = year

    @property
    def year(self) -> int:
        """The requested year, or the first whose annotations are there."""
        if self.requested_year is not None:
            return self.requested_year
        present = [year for year in YEARS if annotation_file(self.path, "train", year).is_file()]
        return present[0] if present else YEARS[0]

    def ensure_source(self) -> None:
        missing = [
            str(path)
            for split in SPLIT_FILES
            for path in (annotation_file(self.path, split, self.year), self.path / f"{SPLIT_FILES[split]}{self.year}")
            if not path.exists()
        ]
        if missing:
            raise MissingInputError(
                f"MS-COCO {self.year} not found under data.path={self.path}: missing {', '.join(missing)}. Unpack "
                f"annotations_trainval{self.year}.zip, train{self.year}.zip and val{self.year}.zip from "
                "cocodataset.org there (data.year=2014 or 2017 picks the release)"
            )

    def source_base(self) -> Path:
        return self.path

    def caption_files(self, split: str) -> list[Path]:
        return [annotation_file(self.path, split, self.year)]

    def read_listing(self, split: str, bad: BadInputLog) -> list[CaptionedImage]:
        path = annotation_file(self.path, split, self.year)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise BadDataError(f"{path} is not valid JSON ({error}); unpack the annotations archive again") from None
        if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(
            data.get("annotations"), list
        ):
            raise BadDataError(f'{path} is not a COCO captions file: expected an object with "images" and '
                               '"annotations" lists (annotations/captions_<split><year>.json)')
        texts: dict[object, list[str]] = defaultdict(list)
        for number, annotation in enumerate(data["annotations"]):
            if not isinstance(annotation, dict) or not isinstance(annotation.get("caption"), str):
                bad.add(BadInput(f"{path} annotations[{number}]", 'expected an object with "image_id" and "caption"'))
                continue
            texts[annotation.get("image_id")].append(annotation["caption"])
        folder = self.path / f"{SPLIT_FILES[split]}{self.year}"
        entries = []
        for number, image in enumerate(data["images"]):
            where = f"{path} images[{number}]"
            try:
                if not isinstance(image, dict) or not isinstance(image.get("file_name"), str):
                    raise BadInput(where, 'expected an object with "id" and "file_name"')
                file = folder / image["file_name"]
                if not file.is_file():
                    raise BadInput(where, f"{file} does not exist")
                entries.append(CaptionedImage(file, checked_captions(texts.get(image.get("id"), []), where)))
            except BadInput as error:
                bad.add(error)
        return entries
