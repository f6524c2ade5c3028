"""data=digit_scenes: canvases hold the digits their description says, captions are true of their scene, held-out
content stays out of training, and the digits' train/val split is kept."""

import numpy as np
import pytest
import torch
from hydra_compose import compose_train

from parti_exp.builders import build_datamodule
from parti_exp.data import DigitScenesDataModule
from parti_exp.data.captions.labels import DIGIT_WORDS
from parti_exp.data.captions.scene_captions import scene_captions
from parti_exp.data.captions.scene_spec import CATEGORIES, EMPTY, SceneSpec
from parti_exp.models.text_to_image.text_tokenizer import BPETokenizer


@pytest.fixture(scope="module")
def scenes():
    """The default data: 20,000 training and 1,000 validation scenes (about 2 s to compose)."""
    dm = DigitScenesDataModule()
    dm.setup()
    return dm


def cell_images(images: np.ndarray) -> np.ndarray:
    """(N, 1, 32, 32) -> (N, 4, 16, 16): the cells in reading order."""
    n = len(images)
    return images.reshape(n, 2, 16, 2, 16).transpose(0, 1, 3, 2, 4).reshape(n, 4, 16, 16)


def digit_lookup(split) -> dict[bytes, set[int]]:
    """Each digit image of a split (as bytes) -> its labels (the data holds a few duplicate images)."""
    lookup: dict[bytes, set[int]] = {}
    for image, label in zip(split.images, split.labels):
        lookup.setdefault(image[0].tobytes(), set()).add(int(label))
    return lookup


@pytest.mark.parametrize("split", ["train", "val"])
def test_each_cell_holds_a_digit_of_its_own_split_or_nothing(scenes, split):
    images = (scenes.train_set if split == "train" else scenes.val_set).images
    own = digit_lookup(scenes.digits.train_set if split == "train" else scenes.digits.val_set)
    other = digit_lookup(scenes.digits.val_set if split == "train" else scenes.digits.train_set)
    truth = scenes.scenes[split]
    cells = cell_images(images[:3000])
    filled = truth.cells[:3000] != EMPTY
    assert (cells[~filled] == 0).all()  # empty cells are black
    # Every filled cell is, pixel for pixel, an image of the digits' same split showing the digit recorded there.
    for cell, digit in zip(cells[filled], truth.cells[:3000][filled]):
        assert int(digit) in own[cell.tobytes()]
    # ... and (but for the raw data's few duplicate images) none of the other split's: the sources are disjoint.
    shared = np.mean([cell.tobytes() in other for cell in cells[filled]])
    assert shared < 0.02
    # The recorded sources agree with the pixels, and their ink (pixel sums) is the cell's.
    sources = (scenes.digits.train_set if split == "train" else scenes.digits.val_set).images[:, 0]
    for index in range(200):
        for position in np.flatnonzero(filled[index]):
            source = sources[truth.sources[index, position]]
            assert int(cells[index, position].sum()) == int(source.sum()) > 0


def test_the_recorded_cells_show_the_recorded_content(scenes):
    for split in ("train", "val"):
        truth = scenes.scenes[split]
        assert all(spec.matches(cells) for spec, cells in zip(truth.specs, truth.cells.tolist()))
        counts = {category: sum(spec.category == category for spec in truth.specs) for category in CATEGORIES}
        assert min(counts.values()) > 0.2 * len(truth.specs)  # every category about a quarter of the scenes


def _expected_captions(cells: list[int]) -> set[str]:
    """Every caption a scene must have, written from its cells alone (not from its spec): the benchmark's phrasings,
    with each digit as a word or a numeral."""

    def names(digit: int) -> list[str]:
        return [DIGIT_WORDS[digit], str(digit)]

    def a(name: str) -> str:
        return ("an " if name in ("eight", "8") else "a ") + name

    filled = [(index, digit) for index, digit in enumerate(cells) if digit != EMPTY]
    digits = [digit for _, digit in filled]
    if len(filled) == 1:
        return {phrase for name in names(digits[0])
                for phrase in (a(name), f"a single {name}", f"the digit {name}", f"just {a(name)}")}
    if len(set(digits)) == 1:
        digit, number = digits[0], {2: "two", 3: "three", 4: "four"}[len(digits)]
        plural = "sixes" if digit == 6 else DIGIT_WORDS[digit] + "s"
        copies = f"{number} copies of the digit"
        return {f"{number} {plural}", f"{number} {digit}s", f"{len(digits)} {plural}",
                f"{copies} {DIGIT_WORDS[digit]}", f"{copies} {digit}"}
    (first, x), (second, y) = filled
    if first // 2 == second // 2:  # the same row: x is on the left
        templates = ("{x} to the left of {y}", "{y} to the right of {x}", "{x} on the left of {y}",
                     "{y} on the right of {x}")
    else:  # the same column: x is on top
        templates = ("{x} above {y}", "{y} below {x}", "{x} over {y}", "{y} under {x}")
    return {t.format(x=a(p), y=a(q)) for t in templates for p in names(x) for q in names(y)}


def test_captions_are_true_of_their_scene_and_name_one_content(scenes):
    source = scenes.caption_source()
    spec_of_caption: dict[str, SceneSpec] = {}
    for split, offset in (("train", 0), ("val", scenes.num_train)):
        truth = scenes.scenes[split]
        for index, (spec, cells) in enumerate(zip(truth.specs, truth.cells.tolist())):
            captions = source.captions[offset + index]
            assert len(set(captions)) == len(captions) >= 5
            assert set(captions) == _expected_captions(cells), (cells, captions)
            for caption in captions:
                assert spec_of_caption.setdefault(caption, spec) == spec, caption  # never two contents
    # Words and numerals are both used.
    assert "a seven" in spec_of_caption and "a 7" in spec_of_caption


def test_held_out_content_never_appears_in_training(scenes):
    def pairs_three_and_eight(cells):
        return sorted(digit for digit in cells if digit != EMPTY) == [3, 8]

    def three_sevens(cells):
        return sorted(digit for digit in cells if digit != EMPTY) == [7, 7, 7]

    train, val = scenes.scenes["train"], scenes.scenes["val"]
    assert not any(pairs_three_and_eight(cells) or three_sevens(cells) for cells in train.cells.tolist())
    assert not train.held_out.any()
    # The val split holds both kinds, flagged, and the flag is exactly "3 with 8, or three sevens".
    flags = [pairs_three_and_eight(cells) or three_sevens(cells) for cells in val.cells.tolist()]
    assert val.held_out.tolist() == flags
    assert 0 < sum(flags) < len(flags)
    assert {spec.category for spec, held in zip(val.specs, flags) if held} == {"count", "left_right", "above_below"}
    corpus = set(scenes.caption_source().corpus())
    for caption in ("a 3 to the left of an 8", "an eight above a three", "three sevens", "3 sevens"):
        assert caption not in corpus
    assert {"a 3 to the left of a 7", "three ones", "two sevens", "a seven"} <= corpus


def test_held_out_content_is_configurable():
    dm = DigitScenesDataModule(num_train=3000, num_val=100, held_out_pairs=[[1, 2]], held_out_counts=[])
    dm.setup()
    present = [sorted(d for d in cells if d != EMPTY) for cells in dm.scenes["train"].cells.tolist()]
    assert [1, 2] not in present and [3, 8] in present and [7, 7, 7] in present


def test_scenes_are_determined_by_the_seed():
    a, b = DigitScenesDataModule(num_train=200, num_val=50), DigitScenesDataModule(num_train=200, num_val=50)
    other = DigitScenesDataModule(num_train=200, num_val=50, scene_seed=1)
    for dm in (a, b, other):
        dm.setup()
    assert np.array_equal(a.train_set.images, b.train_set.images) and np.array_equal(a.val_set.images, b.val_set.images)
    assert a.scenes["val"].specs == b.scenes["val"].specs
    assert not np.array_equal(a.train_set.images, other.train_set.images)
    # The digits' split does not follow the scene seed: only which digits are drawn changes.
    assert np.array_equal(a.digits.val_set.images, other.digits.val_set.images)


def test_caption_source_round_trip(scenes):
    source = scenes.caption_source()
    images, labels = next(iter(scenes.train_dataloader()))
    assert images.shape == (64, 1, 32, 32) and images.dtype == torch.uint8
    # Labels are caption ids: they pick the batch's own scenes, and the captions drawn for them.
    assert np.array_equal(images.numpy(), scenes.train_set.images[labels.numpy()])
    torch.manual_seed(0)
    drawn = source.draw(labels)
    torch.manual_seed(0)
    assert source.draw(labels) == drawn  # the global RNG decides, so a seeded run and its resume agree
    for label, caption in zip(labels.tolist(), drawn):
        assert caption in scene_captions(scenes.scenes["train"].specs[label])
    assert source.first(labels) == [scene_captions(scenes.scenes["train"].specs[i])[0] for i in labels.tolist()]
    _, val_labels = next(iter(scenes.val_dataloader()))
    assert val_labels.min() >= scenes.num_train
    first_val_spec = scenes.scenes["val"].specs[int(val_labels[0]) - scenes.num_train]
    assert source.first(val_labels[:1]) == [scene_captions(first_val_spec)[0]]
    # The corpus is the training scenes' captions only.
    assert len(source.corpus()) == sum(len(scene_captions(spec)) for spec in scenes.scenes["train"].specs)
    # The grid prompts show every category, seen and held out, in the first rows.
    prompts = source.prompts(7)
    specs = {caption: spec for spec in scenes.scenes["val"].specs for caption in scene_captions(spec)}
    assert {specs[prompt].category for prompt in prompts} == set(CATEGORIES)
    assert sum(scenes.held_out.contains(specs[prompt]) for prompt in prompts) == 3


def test_evaluation_prompts_cover_each_category_seen_and_held_out(scenes):
    prompts = scenes.evaluation_prompts(specs_per_category=3, phrasings=2, seed=0)
    assert prompts == scenes.evaluation_prompts(specs_per_category=3, phrasings=2, seed=0)
    for prompt in prompts:
        assert prompt.text in scene_captions(prompt.spec)
        assert prompt.held_out == scenes.held_out.contains(prompt.spec)
    seen = [p for p in prompts if not p.held_out]
    held = [p for p in prompts if p.held_out]
    assert len(seen) == 4 * 3 * 2
    # Every held-out content: 3-8 and 8-3 in both relations, and three sevens.
    assert {(p.spec.category, p.spec.digits) for p in held} == {
        ("left_right", (3, 8)), ("left_right", (8, 3)), ("above_below", (3, 8)), ("above_below", (8, 3)),
        ("count", (7, 7, 7)),
    }
    assert len(held) == 5 * 2


def test_every_caption_fits_the_presets_text_length(scenes, tmp_path):
    cfg = compose_train(tmp_path, "experiment=parti_scenes", "model.tokenizer_ckpt=unused.ckpt", fast=False)
    source = scenes.caption_source()
    tokenizer = BPETokenizer.train(source.corpus(), cfg.model.text_tokenizer.vocab_size, cfg.model.max_text_len)
    every_caption = sorted({caption for captions in source.captions for caption in captions})
    assert max(tokenizer.token_counts(every_caption)) <= cfg.model.max_text_len


def test_config_builds_the_datamodule(cfg_factory):
    dm = build_datamodule(cfg_factory("data=digit_scenes"))
    assert type(dm) is DigitScenesDataModule
    assert (dm.img_size, dm.channels, dm.num_classes, dm.cell_size) == (32, 1, 0, 16)
    assert (dm.num_train, dm.num_val) == (20000, 1000)
    assert dm.held_out.contains(SceneSpec("left_right", (8, 3)))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"img_size": 33}, "even integer >= 16"),
        ({"img_size": 12}, "even integer >= 16"),
        ({"num_classes": 10}, "caption ids, not classes"),
        ({"channels": 3}, "grayscale"),
        ({"num_train": 0}, "data.num_train must be a positive integer"),
        ({"num_val": -1}, "data.num_val must be a positive integer"),
        ({"held_out_pairs": [[2, 2]]}, "held_out_pairs"),
        ({"held_out_counts": [[c, d] for c in (2, 3, 4) for d in range(10)]}, "hold out every count scene"),
    ],
)
def test_bad_config_values_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DigitScenesDataModule(**kwargs)
