"""Hard negative captions: the same words in an order (or with a mirrored relation word) that makes them false.

A contrastive scorer trained only against the other captions of its batch can rank well while reading captions as
bags of words: in a batch, captions that differ only in word order are rare, so "a 3 to the left of a 7" and "a 7 to
the left of a 3" never compete. NegCLIP (Yuksekgonul et al. 2023, "When and why vision-language models behave like
bags-of-words") adds, for each image, its own caption with words swapped as one more negative. ``WordOrderNegatives``
makes one such caption per image, by one of two edits chosen at random:

- exchange the first and the last content word (words outside ``STOP_WORDS``): "a man riding a horse" -> "a horse
  riding a man", "a 3 above a 7" -> "a 7 above a 3";
- replace a word by its mirror from ``mirrors``: "a 3 to the left of a 7" -> "a 3 to the right of a 7".

A caption that allows neither edit ("a seven") has no hard negative. The edits are picked with the global torch
RNG, as the captions themselves are, so they are part of an exact resume.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from parti_exp.runtime.validation import require

# Words whose exchange rarely changes what a caption claims about the image.
STOP_WORDS = frozenset(
    "a an the of to on in at by with and or is are this that its their there some".split()
)


class WordOrderNegatives:
    def __init__(self, mirrors: Sequence[Sequence[str]] = ()) -> None:
        """``mirrors``: word pairs that state opposite relations (``[[left, right], [above, below]]``); each word of a
        pair becomes the other."""
        self.mirror: dict[str, str] = {}
        for pair in mirrors:
            two_words = len(pair) == 2 and all(isinstance(word, str) and word and " " not in word for word in pair)
            require(two_words, "model.hard_negatives.mirrors:", f"each entry is two single words, got {list(pair)}")
            first, second = (word.lower() for word in pair)
            self.mirror[first], self.mirror[second] = second, first

    def edits(self, caption: str) -> list[str]:
        """Every false caption one edit away from ``caption`` (possibly none)."""
        words = caption.split()
        content = [index for index, word in enumerate(words) if word.lower() not in STOP_WORDS]
        edits = []
        if len(content) >= 2 and words[content[0]].lower() != words[content[-1]].lower():
            swapped = list(words)
            swapped[content[0]], swapped[content[-1]] = words[content[-1]], words[content[0]]
            edits.append(" ".join(swapped))
        for index, word in enumerate(words):
            if word.lower() in self.mirror:
                mirrored = list(words)
                mirrored[index] = self.mirror[word.lower()]
                edits.append(" ".join(mirrored))
        return edits

    def __call__(self, captions: Sequence[str]) -> list[str | None]:
        """One hard negative per caption, drawn among its ``edits``; None where there is none."""
        negatives: list[str | None] = []
        for caption in captions:
            edits = self.edits(caption)
            negatives.append(edits[int(torch.randint(len(edits), ()))] if edits else None)
        return negatives
