"""What a digit scene shows, as data: the content a caption asks for, the arrangements that fit it, and the
combinations held out of training.

A scene is a 2 x 2 grid of cells, each empty or holding one digit, listed in reading order (top-left, top-right,
bottom-left, bottom-right); ``EMPTY`` marks an empty cell. A ``SceneSpec`` is what a caption says about a scene:
its category and its digits. Every caption of a scene states its whole content, so all of them share the scene's
spec; the benchmark checks a generated canvas against the spec (``matches``), never by reading the caption's text.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from parti_exp.runtime.validation import require

EMPTY = -1
CELLS = 4  # 2 x 2, in reading order
CATEGORIES = ("identity", "count", "left_right", "above_below")
COUNTS = (2, 3, 4)  # how many copies of one digit a count scene holds: the grid has room for 4


@dataclass(frozen=True)
class SceneSpec:
    """The content of a scene.

    ``identity``: one digit, ``digits == (d,)``, in any cell. ``count``: ``n`` copies of one digit, ``digits ==
    (d,) * n``, in any cells. ``left_right``: two different digits in the same row, ``digits == (left, right)``.
    ``above_below``: two different digits in the same column, ``digits == (top, bottom)``. Other cells are empty.
    """

    category: str
    digits: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"scene category must be one of {CATEGORIES}, got {self.category!r}")
        if not all(0 <= digit <= 9 for digit in self.digits):
            raise ValueError(f"scene digits must be in 0..9, got {self.digits}")
        if self.category == "identity" and len(self.digits) != 1:
            raise ValueError(f"an identity scene holds one digit, got {self.digits}")
        if self.category == "count" and (len(self.digits) not in COUNTS or len(set(self.digits)) != 1):
            raise ValueError(f"a count scene holds {COUNTS} copies of one digit, got {self.digits}")
        if self.category in ("left_right", "above_below") and (len(self.digits) != 2 or len(set(self.digits)) != 2):
            raise ValueError(f"a {self.category} scene holds two different digits, got {self.digits}")

    @property
    def is_relation(self) -> bool:
        return self.category in ("left_right", "above_below")

    def matches(self, cells: Sequence[int]) -> bool:
        """True when the 2 x 2 ``cells`` (reading order, ``EMPTY`` or a digit) show exactly this content: the
        digits, their number, and (for a relation) their arrangement; nothing else is in the grid."""
        filled = [index for index, cell in enumerate(cells) if cell != EMPTY]
        if not self.is_relation:
            return sorted(cells[index] for index in filled) == list(self.digits)
        if len(filled) != 2:
            return False
        first, second = filled  # in reading order: the left one of a row, the top one of a column
        if self.category == "left_right" and first // 2 != second // 2:
            return False
        if self.category == "above_below" and first % 2 != second % 2:
            return False
        return (cells[first], cells[second]) == self.digits

    def layouts(self) -> list[tuple[int, ...]]:
        """Every 2 x 2 arrangement of cells that shows this content (those ``matches`` accepts)."""
        if self.is_relation:
            # Rows are cells (0, 1) and (2, 3); columns are (0, 2) and (1, 3).
            places = [(0, 1), (2, 3)] if self.category == "left_right" else [(0, 2), (1, 3)]
        else:
            places = list(itertools.combinations(range(CELLS), len(self.digits)))
        layouts = []
        for place in places:
            cells = [EMPTY] * CELLS
            for index, digit in zip(place, self.digits):
                cells[index] = digit
            layouts.append(tuple(cells))
        return layouts


def all_specs(category: str) -> list[SceneSpec]:
    """Every spec of a category, in a fixed order."""
    if category == "identity":
        return [SceneSpec("identity", (digit,)) for digit in range(10)]
    if category == "count":
        return [SceneSpec("count", (digit,) * count) for count in COUNTS for digit in range(10)]
    if category in ("left_right", "above_below"):
        return [SceneSpec(category, pair) for pair in itertools.permutations(range(10), 2)]
    raise ValueError(f"scene category must be one of {CATEGORIES}, got {category!r}")


@dataclass(frozen=True)
class HeldOutCombinations:
    """Content that never appears in training, to measure compositional generalisation rather than recall.

    ``pairs``: two digits never shown in a relation together (either order, left/right and above/below): the
    model has seen each digit, and each relation, but not this pairing. ``counts``: ``(count, digit)`` never
    shown, as in "three sevens" when "three ones" and "two sevens" were.
    """

    pairs: frozenset[frozenset[int]]
    counts: frozenset[tuple[int, int]]

    @classmethod
    def from_config(cls, pairs: Sequence[Sequence[int]], counts: Sequence[Sequence[int]]) -> HeldOutCombinations:
        """From ``data.held_out_pairs`` (``[[3, 8], ...]``) and ``data.held_out_counts`` (``[[3, 7], ...]``)."""
        checked_pairs = []
        for pair in pairs or ():
            require(len(pair) == 2 and _digits(pair) and pair[0] != pair[1], "data.held_out_pairs:",
                    f"each entry is two different digits 0-9, got {list(pair)}")
            checked_pairs.append(frozenset(pair))
        checked_counts = []
        for entry in counts or ():
            require(len(entry) == 2 and entry[0] in COUNTS and _digits(entry[1:]), "data.held_out_counts:",
                    f"each entry is [count, digit] with count in {list(COUNTS)} and a digit 0-9, got {list(entry)}")
            checked_counts.append((int(entry[0]), int(entry[1])))
        return cls(frozenset(checked_pairs), frozenset(checked_counts))

    def contains(self, spec: SceneSpec) -> bool:
        if spec.is_relation:
            return frozenset(spec.digits) in self.pairs
        if spec.category == "count":
            return (len(spec.digits), spec.digits[0]) in self.counts
        return False


@dataclass(frozen=True)
class ScenePrompt:
    """An evaluation prompt: its text, the content it asks for, and whether that content was held out of training."""

    text: str
    spec: SceneSpec
    held_out: bool


def _digits(values: Sequence[int]) -> bool:
    return all(isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9 for value in values)
