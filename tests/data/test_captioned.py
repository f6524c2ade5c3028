"""Captioned images (data=captions in the imagefolder and sidecar layouts, data=coco) on tiny files written in
exactly those formats: images and caption ids, captions per image, splits, the cache, and every bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from parti_exp.data import CaptionsDataModule, COCODataModule
from parti_exp.data.captions.base import clean_caption
from parti_exp.data.captions.sources import ImageCaptions


def write_image(path: Path, value: int, size: tuple[int, int] = (20, 12)) -> None:
    """A flat grey RGB image: after resizing and cropping every pixel still reads ``value``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


def write_imagefolder(folder: Path, n: int, kind: str = "jsonl", start: int = 0) -> dict[str, list[str]]:
    """``n`` images with 1-3 captions each, listed in metadata.jsonl or metadata.csv (one caption per row there)."""
    captions = {}
    for i in range(start, start + n):
        name = f"img_{i:03d}.png"
        write_image(folder / "images" / name, 10 * i)
        captions[f"images/{name}"] = [f"picture number {i}", f"a grey square {i}"][: 1 + i % 2]
    if kind == "jsonl":
        rows = [json.dumps({"file_name": name, "text": texts if len(texts) > 1 else texts[0]})
                for name, texts in captions.items()]
        (folder / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    else:
        captions = {name: texts[:1] for name, texts in captions.items()}
        with open(folder / "metadata.csv", "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["file_name", "text"])
            writer.writerows([name, texts[0]] for name, texts in captions.items())
    return captions


def module(path: Path, tmp_path: Path, **kwargs) -> CaptionsDataModule:
    options = dict(img_size=8, channels=1, batch_size=2, decode_workers=0, cache_dir=tmp_path / "cache")
    return CaptionsDataModule(path=path, root=tmp_path, **{**options, **kwargs})


def captions_of(datamodule, split: str) -> list[list[str]]:
    datamodule.setup()
    dataset = datamodule.train_set if split == "train" else datamodule.val_set
    source = datamodule.caption_source()
    return [source.captions[i] for i in dataset.labels.tolist()]


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_imagefolder_metadata_gives_each_image_its_captions(tmp_path, kind):
    written = write_imagefolder(tmp_path / "set", 10, kind)
    datamodule = module(tmp_path / "set", tmp_path, val_fraction=0.2)
    datamodule.setup()
    assert (len(datamodule.train_set), len(datamodule.val_set)) == (8, 2)
    # caption ids: train first, then val
    assert sorted([*datamodule.train_set.labels.tolist(), *datamodule.val_set.labels.tolist()]) == list(range(10))
    by_value = {10 * int(name[-7:-4]): texts for name, texts in written.items()}
    for split in ("train", "val"):
        dataset = datamodule.train_set if split == "train" else datamodule.val_set
        for image, texts in zip(dataset.images, captions_of(datamodule, split)):
            assert texts == by_value[int(image.mean().round())]


def test_sidecar_text_files_one_caption_per_line(tmp_path):
    folder = tmp_path / "photos"
    for i in range(4):
        write_image(folder / f"photo_{i}.jpg", 40 * i)
        (folder / f"photo_{i}.txt").write_text(f"first caption {i}\n\n  second\tcaption {i}  \n")
    datamodule = module(folder, tmp_path, val_fraction=0.25)
    assert sorted(map(tuple, captions_of(datamodule, "train") + captions_of(datamodule, "val"))) == [
        (f"first caption {i}", f"second caption {i}") for i in range(4)
    ]


def test_split_subfolders_are_the_splits(tmp_path):
    write_imagefolder(tmp_path / "set" / "train", 5, start=0)
    write_imagefolder(tmp_path / "set" / "validation", 3, start=10)
    datamodule = module(tmp_path / "set", tmp_path)
    datamodule.setup()
    assert (len(datamodule.train_set), len(datamodule.val_set)) == (5, 3)
    assert all(texts[0].endswith(str(10 + k)) for k, texts in enumerate(captions_of(datamodule, "val")))
    source = datamodule.caption_source()
    assert isinstance(source, ImageCaptions)
    # the tokenizer's corpus is the training captions only
    assert not any(caption.endswith(("10", "11", "12")) for caption in source.corpus())
    assert source.prompts(2) == ["picture number 10", "picture number 11"]


def test_a_step_draws_one_of_each_images_captions_from_the_global_rng(tmp_path):
    source = ImageCaptions([["a", "b", "c"], ["d"]], num_train=2, prompt_ids=[1])
    labels = torch.tensor([0] * 300 + [1])
    torch.manual_seed(0)
    first = source.draw(labels)
    assert set(first[:300]) == {"a", "b", "c"} and first[300] == "d"
    torch.manual_seed(0)
    assert source.draw(labels) == first
    assert source.first(labels[-2:]) == ["a", "d"]


def test_the_cache_holds_images_and_captions_and_a_second_run_decodes_nothing(tmp_path, monkeypatch):
    write_imagefolder(tmp_path / "set", 6)
    module(tmp_path / "set", tmp_path).setup()
    assert len(list((tmp_path / "cache").glob("*.captions.json"))) == 2
    monkeypatch.setattr("parti_exp.data.captions.base.decode_image_files", lambda *a, **k: pytest.fail("decoded again"))
    again = module(tmp_path / "set", tmp_path)
    assert len(captions_of(again, "train")) == len(again.train_set)


def test_captions_are_cleaned_of_control_characters():
    assert clean_caption("  a\x00red\nbus\t on\u200b a  street \r\n") == "a red bus on\u200b a street"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"file_name": "images/none.png", "text": "x"}', "file_name 'images/none.png' does not exist"),
        ('{"file_name": "images/img_000.png", "text": "  "}', "a caption is empty"),
        ('{"file_name": "images/img_000.png", "text": []}', "the image has no caption"),
        ('["images/img_000.png", "x"]', 'expected an object with "file_name"'),
        ('{"file_name": "images/img_000.png", "text": 7}', '"text" must be a string or a list of strings'),
        ('{"file_name": "../escape.png", "text": "x"}', "lies outside"),
        ("{not json", "not valid JSON"),
    ],
)
def test_a_bad_metadata_row_is_named_with_its_file_and_line(tmp_path, row, message):
    folder = tmp_path / "set"
    write_imagefolder(folder, 4)
    write_image(tmp_path / "escape.png", 0)
    with open(folder / "metadata.jsonl", "a") as file:
        file.write(row + "\n")
    with pytest.raises(ValueError, match=rf"metadata.jsonl line 5: .*{message}.*data.skip_bad=true"):
        module(folder, tmp_path).setup()
    skipping = module(folder, tmp_path, skip_bad=True)
    skipping.setup()
    assert len(skipping.train_set) + len(skipping.val_set) == 4


def break_image(path: Path) -> None:
    """Cut a PNG to its first bytes: the header reads, the pixels do not."""
    path.write_bytes(path.read_bytes()[:60])


def test_skip_bad_leaves_out_an_undecodable_image_with_its_captions(tmp_path, caplog):
    folder = tmp_path / "set"
    write_imagefolder(folder, 8)
    break_image(folder / "images" / "img_003.png")
    with pytest.raises(ValueError, match=r"cannot decode image .*img_003.png.*data.skip_bad=true"):
        module(folder, tmp_path).setup()
    skipping = module(folder, tmp_path, skip_bad=True)
    skipping.setup()
    assert len(skipping.train_set) + len(skipping.val_set) == 7
    assert "1 unreadable files skipped" in caplog.text
    # Every image still carries its own captions: the grey level 10 * i of image i, and "picture number i".
    for split, dataset in (("train", skipping.train_set), ("val", skipping.val_set)):
        for image, captions in zip(dataset.images, captions_of(skipping, split)):
            assert captions[0] == f"picture number {int(image[0, 0, 0]) // 10}"
    assert "picture number 3" not in [c[0] for split in ("train", "val") for c in captions_of(skipping, split)]
    # The entry built while skipping is not served to a run that does not skip.
    with pytest.raises(ValueError, match="img_003.png"):
        module(folder, tmp_path).setup()


def test_skip_bad_leaves_out_an_undecodable_coco_image(tmp_path):
    write_coco(tmp_path / "coco", 2017)
    break_image(tmp_path / "coco" / "train2017" / "000000000101.jpg")
    options = dict(path=tmp_path / "coco", root=tmp_path, img_size=8, batch_size=2, decode_workers=0)
    with pytest.raises(ValueError, match=r"000000000101.jpg.*data.skip_bad=true"):
        COCODataModule(**options).setup()
    datamodule = COCODataModule(**options, skip_bad=True)
    datamodule.setup()
    assert len(datamodule.train_set) == 3
    assert [c[0] for c in captions_of(datamodule, "train")] == [f"Caption 0 of {i}." for i in (100, 102, 103)]
    assert captions_of(datamodule, "val")[0][0] == "Caption 0 of 104."


def test_an_image_without_its_text_file_is_named(tmp_path):
    folder = tmp_path / "photos"
    for i in range(3):
        write_image(folder / f"photo_{i}.png", i)
        if i != 1:
            (folder / f"photo_{i}.txt").write_text("a caption\n")
    with pytest.raises(ValueError, match=r"photo_1.png: the image has no caption \(no photo_1.txt beside it\)"):
        module(folder, tmp_path).setup()


def test_a_csv_without_the_text_column_is_refused(tmp_path):
    folder = tmp_path / "set"
    write_image(folder / "a.png", 0)
    (folder / "metadata.csv").write_text("file_name,caption\na.png,hello\n")
    with pytest.raises(ValueError, match="no text column"):
        module(folder, tmp_path).setup()


def write_coco(root: Path, year: int, n_train: int = 4, n_val: int = 2) -> None:
    """annotations/captions_{train,val}<year>.json and the image folders, as the official archives unpack."""
    image_id = 100
    for split, n in (("train", n_train), ("val", n_val)):
        images, annotations = [], []
        for k in range(n):
            name = f"COCO_{split}{year}_{image_id:012d}.jpg" if year == 2014 else f"{image_id:012d}.jpg"
            write_image(root / f"{split}{year}" / name, 20 * k + 5, size=(32, 24))
            images.append({"id": image_id, "file_name": name, "height": 24, "width": 32})
            annotations += [{"id": 5 * image_id + c, "image_id": image_id, "caption": f"Caption {c} of {image_id}."}
                            for c in range(5)]
            image_id += 1
        path = root / "annotations" / f"captions_{split}{year}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"info": {}, "images": images, "annotations": annotations}))


@pytest.mark.parametrize("year", [2017, 2014])
def test_coco_reads_its_release_with_five_captions_per_image(tmp_path, year):
    write_coco(tmp_path / "coco", year)
    datamodule = COCODataModule(path=tmp_path / "coco", root=tmp_path, img_size=8, batch_size=2, decode_workers=0)
    assert datamodule.year == year
    datamodule.setup()
    assert datamodule.train_set.images.shape == (4, 3, 8, 8) and len(datamodule.val_set) == 2
    assert captions_of(datamodule, "val")[0] == [f"Caption {c} of 104." for c in range(5)]
    assert np.all(datamodule.train_set.images[1] == 25)


def test_coco_missing_or_malformed_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MS-COCO 2017 not found .*captions_train2017.json"):
        COCODataModule(path=tmp_path / "none", root=tmp_path).setup()
    write_coco(tmp_path / "coco", 2017)
    (tmp_path / "coco" / "annotations" / "captions_val2017.json").write_text('{"images": 3}')
    with pytest.raises(ValueError, match="is not a COCO captions file"):
        COCODataModule(path=tmp_path / "coco", root=tmp_path, img_size=8, batch_size=2, decode_workers=0).setup()
    with pytest.raises(ValueError, match="data.year must be one of"):
        COCODataModule(path=tmp_path / "coco", root=tmp_path, year=2015)
