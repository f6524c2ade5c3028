"""A scene's content as data: which 2 x 2 arrangements fit a spec, and which content is held out."""

import itertools

import pytest

from parti_exp.data.captions.scene_spec import CATEGORIES, EMPTY, HeldOutCombinations, SceneSpec, all_specs

E = EMPTY


def test_layouts_are_exactly_the_arrangements_that_match():
    for category in CATEGORIES:
        for spec in all_specs(category):
            # Every grid over empty, the spec's digits and one other digit: what a reader could return.
            other = next(digit for digit in range(10) if digit not in spec.digits)
            values = sorted({EMPTY, other, *spec.digits})
            matching = {cells for cells in itertools.product(values, repeat=4) if spec.matches(cells)}
            assert matching == set(spec.layouts()), spec


@pytest.mark.parametrize(
    "spec,cells,expected",
    [
        (SceneSpec("identity", (7,)), (E, E, 7, E), True),
        (SceneSpec("identity", (7,)), (E, 1, 7, E), False),  # an extra digit
        (SceneSpec("identity", (7,)), (E, E, E, E), False),
        (SceneSpec("count", (5, 5, 5)), (5, E, 5, 5), True),
        (SceneSpec("count", (5, 5, 5)), (5, E, 5, E), False),  # two, not three
        (SceneSpec("count", (5, 5, 5)), (5, 5, 5, 5), False),  # four
        (SceneSpec("count", (5, 5, 5)), (5, 3, 5, E), False),
        (SceneSpec("left_right", (3, 7)), (E, E, 3, 7), True),
        (SceneSpec("left_right", (3, 7)), (7, 3, E, E), False),  # mirrored
        (SceneSpec("left_right", (3, 7)), (3, E, E, 7), False),  # diagonal
        (SceneSpec("left_right", (3, 7)), (3, E, 7, E), False),  # one above the other
        (SceneSpec("left_right", (3, 7)), (3, 7, 1, E), False),
        (SceneSpec("above_below", (4, 8)), (E, 4, E, 8), True),
        (SceneSpec("above_below", (4, 8)), (8, E, 4, E), False),  # upside down
        (SceneSpec("above_below", (4, 8)), (4, 8, E, E), False),  # side by side
    ],
)
def test_matches_requires_digits_number_and_arrangement(spec, cells, expected):
    assert spec.matches(cells) is expected


def test_spec_counts_per_category():
    assert [len(all_specs(category)) for category in CATEGORIES] == [10, 30, 90, 90]


@pytest.mark.parametrize(
    "category,digits,message",
    [
        ("colour", (1,), "category must be one of"),
        ("identity", (1, 2), "one digit"),
        ("count", (1, 2), "copies of one digit"),
        ("count", (1,), "copies of one digit"),
        ("left_right", (4, 4), "two different digits"),
        ("above_below", (4, 10), "in 0..9"),
    ],
)
def test_invalid_specs_are_refused(category, digits, message):
    with pytest.raises(ValueError, match=message):
        SceneSpec(category, digits)


def test_held_out_pairs_cover_both_orders_and_both_relations():
    held = HeldOutCombinations.from_config([[3, 8]], [[3, 7]])
    for category in ("left_right", "above_below"):
        assert held.contains(SceneSpec(category, (3, 8))) and held.contains(SceneSpec(category, (8, 3)))
        assert not held.contains(SceneSpec(category, (3, 7)))
    assert held.contains(SceneSpec("count", (7, 7, 7)))
    assert not held.contains(SceneSpec("count", (7, 7))) and not held.contains(SceneSpec("count", (3, 3, 3)))
    assert not held.contains(SceneSpec("identity", (3,))) and not held.contains(SceneSpec("count", (8, 8, 8)))


@pytest.mark.parametrize(
    "pairs,counts,message",
    [
        ([[3, 3]], [], "held_out_pairs: each entry is two different digits"),
        ([[3, 10]], [], "held_out_pairs"),
        ([[3]], [], "held_out_pairs"),
        ([], [[5, 1]], r"held_out_counts: each entry is \[count, digit\] with count in \[2, 3, 4\]"),
        ([], [[3, 12]], "held_out_counts"),
    ],
)
def test_bad_held_out_config_says_which_key(pairs, counts, message):
    with pytest.raises(ValueError, match=message):
        HeldOutCombinations.from_config(pairs, counts)
