"""Every true caption of a digit scene, in varied phrasings.

A scene's captions all state its whole content (its ``SceneSpec``) in different words: "a seven" / "a single 7",
"three ones" / "3 ones" / "three copies of the digit 1", "a 3 to the left of a seven" / "a seven on the right of a
3", "a seven above a two" / "a 2 under a seven". Digits are written as words and as numerals, mixed freely within a
caption, so the text encoder has to learn that "seven" and "7" mean the same; relations are stated from either
digit's side, so it has to learn that "left of" and "right of" mirror each other.
"""

from __future__ import annotations

from functools import lru_cache

from parti_exp.data.captions.labels import DIGIT_WORDS
from parti_exp.data.captions.scene_spec import SceneSpec

PLURAL_WORDS = ("zeros", "ones", "twos", "threes", "fours", "fives", "sixes", "sevens", "eights", "nines")
COUNT_WORDS = {2: "two", 3: "three", 4: "four"}

# {x}: a digit with its article ("a seven", "an 8"); {bare}: without it ("seven", "8").
IDENTITY_TEMPLATES = ("{x}", "a single {bare}", "the digit {bare}", "just {x}")
# {first} is the left (top) digit and {second} the right (bottom) one; each template names them in its own order.
LEFT_RIGHT_TEMPLATES = (
    "{first} to the left of {second}",
    "{second} to the right of {first}",
    "{first} on the left of {second}",
    "{second} on the right of {first}",
)
ABOVE_BELOW_TEMPLATES = ("{first} above {second}", "{second} below {first}", "{first} over {second}",
                         "{second} under {first}")


def _names(digit: int) -> tuple[str, str]:
    """The digit as a word and as a numeral."""
    return DIGIT_WORDS[digit], str(digit)


def _with_article(name: str) -> str:
    # By sound: "an eight", "an 8", but "a one".
    return f"{'an' if name in ('eight', '8') else 'a'} {name}"


@lru_cache(maxsize=None)
def scene_captions(spec: SceneSpec) -> tuple[str, ...]:
    """All the captions of a scene with content ``spec``, the plainest first (what grids and metrics prompt with).
    Cached: every scene with the same content shares one tuple."""
    if spec.category == "identity":
        return tuple(
            template.format(x=_with_article(name), bare=name)
            for template in IDENTITY_TEMPLATES
            for name in _names(spec.digits[0])
        )
    if spec.category == "count":
        digit, count = spec.digits[0], len(spec.digits)
        word, numeral = _names(digit)
        return (
            f"{COUNT_WORDS[count]} {PLURAL_WORDS[digit]}",
            f"{COUNT_WORDS[count]} {numeral}s",
            f"{count} {PLURAL_WORDS[digit]}",
            f"{COUNT_WORDS[count]} copies of the digit {word}",
            f"{COUNT_WORDS[count]} copies of the digit {numeral}",
        )
    templates = LEFT_RIGHT_TEMPLATES if spec.category == "left_right" else ABOVE_BELOW_TEMPLATES
    first, second = spec.digits
    return tuple(
        template.format(first=_with_article(first_name), second=_with_article(second_name))
        for template in templates
        for first_name in _names(first)
        for second_name in _names(second)
    )
