"""The scene reader on real composed scenes: it reads validation scenes right, a wrong arrangement of the right
digits is counted wrong, and so are the negative controls: a cell holding a blend of two digits, and a faint digit
drawn in a cell that should be empty."""

import numpy as np
import pytest
import torch

from parti_exp.data import DigitScenesDataModule
from parti_exp.data.base import to_signed_unit
from parti_exp.data.captions.scene_spec import CATEGORIES, EMPTY
from parti_exp.metrics.scene_reader import load_scene_reader

pytestmark = pytest.mark.slow  # the reader's classifier trains once per session (scene_reader_cache)


@pytest.fixture(scope="module")
def scenes_and_reader(scene_reader_cache):
    dm = DigitScenesDataModule(num_train=64, num_val=1000)
    dm.setup()
    return dm, load_scene_reader(dm.digits, scene_reader_cache, torch.device("cpu"))


def read_canvases(reader, images: np.ndarray) -> list[list[int]]:
    return reader.read(to_signed_unit(torch.from_numpy(np.ascontiguousarray(images)))).tolist()


def test_real_validation_scenes_are_read_right(scenes_and_reader):
    dm, reader = scenes_and_reader
    truth = dm.scenes["val"]
    read = read_canvases(reader, dm.val_set.images)
    correct = np.array([spec.matches(cells) for spec, cells in zip(truth.specs, read)])
    # Every digit of a scene must be read clearly (the digit reader declines about 3 % of real held-out digits), so
    # real scenes of up to four digits read right 89 % of the time: the ceiling of a generated scene's score.
    assert correct.mean() >= 0.85
    for category in CATEGORIES:
        assert correct[[spec.category == category for spec in truth.specs]].mean() >= 0.8, category
    # Empty cells by ink alone: exact on real scenes (the faintest real digit has far more ink than the threshold).
    assert np.array_equal(np.array(read) == EMPTY, truth.cells == EMPTY)


def test_a_wrong_arrangement_of_the_right_digits_is_counted_wrong(scenes_and_reader):
    dm, reader = scenes_and_reader
    truth = dm.scenes["val"]
    images = dm.val_set.images
    for category, axis in (("left_right", 3), ("above_below", 2)):
        rows = [index for index, spec in enumerate(truth.specs) if spec.category == category]
        specs = [truth.specs[index] for index in rows]
        # Swap the two halves of the canvas: the same digits, mirrored (left <-> right, or top <-> bottom).
        mirrored = np.roll(images[rows], 16, axis=axis)
        assert np.mean([s.matches(c) for s, c in zip(specs, read_canvases(reader, images[rows]))]) >= 0.85
        assert np.mean([s.matches(c) for s, c in zip(specs, read_canvases(reader, mirrored))]) <= 0.01
        # Move the second digit (right, or bottom) to the other row (column): a diagonal, which is neither relation.
        diagonal = images[rows].copy()
        if category == "left_right":
            diagonal[..., :, 16:] = np.roll(diagonal[..., :, 16:], 16, axis=2)
        else:
            diagonal[..., 16:, :] = np.roll(diagonal[..., 16:, :], 16, axis=3)
        assert np.mean([s.matches(c) for s, c in zip(specs, read_canvases(reader, diagonal))]) <= 0.01


def test_a_missing_digit_is_counted_wrong_and_faint_haze_is_empty(scenes_and_reader):
    dm, reader = scenes_and_reader
    truth = dm.scenes["val"]
    rows = [index for index, spec in enumerate(truth.specs) if spec.category == "count"]
    specs = [truth.specs[index] for index in rows]
    fewer = dm.val_set.images[rows].copy()
    for canvas, cells in zip(fewer, truth.cells[rows]):
        row, column = divmod(int(np.flatnonzero(cells != EMPTY)[0]), 2)
        canvas[:, row * 16 : row * 16 + 16, column * 16 : column * 16 + 16] = 0
    assert np.mean([s.matches(c) for s, c in zip(specs, read_canvases(reader, fewer))]) == 0.0
    # A faint haze over the empty cells (as a tokenizer's noise leaves) keeps them empty.
    empty = (truth.cells == EMPTY).reshape(-1, 1, 2, 1, 2, 1)
    haze = np.broadcast_to(empty, (len(empty), 1, 2, 16, 2, 16)).reshape(-1, 1, 32, 32) * np.uint8(12)
    read = read_canvases(reader, dm.val_set.images + haze)
    assert np.array_equal(np.array(read) == EMPTY, truth.cells == EMPTY)


def cell(canvas: np.ndarray, index: int) -> np.ndarray:
    """A view of cell ``index`` (reading order) of a (1, 32, 32) canvas."""
    row, column = divmod(index, 2)
    return canvas[:, row * 16 : row * 16 + 16, column * 16 : column * 16 + 16]


def test_a_cell_holding_a_blend_or_a_faint_digit_is_counted_wrong(scenes_and_reader):
    dm, reader = scenes_and_reader
    truth = dm.scenes["val"]
    digits = dm.digits
    digits.setup()
    pool, pool_labels = np.asarray(digits.val_set.images), np.asarray(digits.val_set.labels)
    rng = np.random.default_rng(0)
    rows = [index for index, spec in enumerate(truth.specs) if spec.category == "identity"]
    specs = [truth.specs[index] for index in rows]
    plain, blended, faint = (dm.val_set.images[rows].copy() for _ in range(3))
    for k, (spec, cells) in enumerate(zip(specs, truth.cells[rows])):
        filled, empty = int(np.flatnonzero(cells != EMPTY)[0]), int(np.flatnonzero(cells == EMPTY)[0])
        other = pool[rng.choice(np.flatnonzero(pool_labels != spec.digits[0]))]
        # the scene's digit mixed 50/50 with a different one
        cell(blended[k], filled)[:] = ((cell(plain[k], filled).astype(np.uint16) + other) // 2).astype(np.uint8)
        # a different digit at 30 % of its ink in a cell the scene leaves empty
        cell(faint[k], empty)[:] = (other * 0.3).round().astype(np.uint8)
    assert np.mean([s.matches(c) for s, c in zip(specs, read_canvases(reader, plain))]) >= 0.9
    assert np.mean([s.matches(c) for s, c in zip(specs, read_canvases(reader, blended))]) <= 0.45
    assert np.mean([s.matches(c) for s, c in zip(specs, read_canvases(reader, faint))]) <= 0.05
