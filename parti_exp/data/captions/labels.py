"""Captions made from a dataset's labels, so that text-to-image models can train on labelled image datasets.

None of the datasets here ship with text, but their labels say what each image shows. A captioner turns a label
into a sentence with one of a few templates ("a handwritten seven", "the digit 7", ...): several phrasings of the
same content teach the model the words, not one fixed string per class. Template choice is random but drawn from a
``torch.Generator``, so a seeded run sees the same captions.

Captions are lower-case words separated by single spaces, with no punctuation, so that the word tokenizer is a
plain split; ``vocabulary()`` lists every word a caption can contain, which is the tokenizer's vocabulary.
"""

from __future__ import annotations

import operator
import re
from abc import ABC, abstractmethod
from string import Formatter
from typing import Any

import torch

from parti_exp.data.captions.sources import CaptionSource

# The 40 binary attributes of CelebA's list_attr_celeba.txt, in the file's column order.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_DATASETS = ("digits", "mnist", "cifar10", "celeba")


def _literal_words(templates: tuple[str, ...]) -> set[str]:
    """The words of the templates outside their ``{fields}``."""
    return {word for template in templates for literal, *_ in Formatter().parse(template) for word in literal.split()}


def _article(word: str) -> str:
    # "an 8": the digit is read "eight", which starts with a vowel sound.
    return "an" if word[0] in "aeiou8" else "a"


class Captioner(ABC):
    """Turns labels into captions with one of ``num_templates()`` sentence templates."""

    templates: tuple[str, ...]
    single_label: bool  # a caption names one class (digits, CIFAR-10), not several attributes (CelebA)

    def num_templates(self) -> int:
        return len(self.templates)

    def captions(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> list[str]:
        """One caption per row of ``labels``, each with a template drawn from ``generator``."""
        if labels.ndim == 0:
            raise ValueError("labels must hold one label per row (a batch), got a 0-dimensional tensor")
        device = generator.device if generator is not None else "cpu"
        templates = torch.randint(self.num_templates(), (len(labels),), generator=generator, device=device)
        return [self.caption(label, template) for label, template in zip(labels.tolist(), templates.tolist())]

    def caption(self, label: Any, template: int) -> str:
        """The caption of one label with template number ``template``."""
        if not 0 <= template < self.num_templates():
            raise ValueError(f"template must be in 0..{self.num_templates() - 1}, got {template}")
        return self.templates[template].format(**self._fields(label))

    def vocabulary(self) -> list[str]:
        """Every word any caption can contain, sorted."""
        return sorted(_literal_words(self.templates) | self._field_words())

    @abstractmethod
    def _fields(self, label: Any) -> dict[str, str]:
        """The values of the template fields for ``label``."""

    @abstractmethod
    def _field_words(self) -> set[str]:
        """Every word a template field can be filled with."""

    @abstractmethod
    def class_of(self, caption: str) -> int | None:
        """The class a caption names, or None if it names none or several (single-label datasets only)."""

    @abstractmethod
    def prompts_for_classes(self) -> list[str]:
        """Fixed prompts for evaluation: one per class, with template 0."""


class _ClassCaptioner(Captioner):
    """Single-label datasets: a caption names one class, and ``class_of`` reads it back."""

    num_classes: int
    single_label = True

    def _class_index(self, label: Any) -> int:
        try:
            index = operator.index(label)
        except TypeError:
            raise ValueError(f"expected a class index in 0..{self.num_classes - 1}, got {label!r}") from None
        if not 0 <= index < self.num_classes:
            raise ValueError(f"expected a class index in 0..{self.num_classes - 1}, got {index}")
        return index

    def _field_words(self) -> set[str]:
        return {
            word
            for index in range(self.num_classes)
            for value in self._fields(index).values()
            for word in value.split()
        }

    @abstractmethod
    def _class_words(self) -> dict[str, int]:
        """The words that name a class, each with its class."""

    def class_of(self, caption: str) -> int | None:
        # Any non-alphanumeric character separates words, so user prompts like "The digit 2." are read too.
        words = self._class_words()
        named = {words[token] for token in re.findall(r"[a-z0-9]+", caption.lower()) if token in words}
        return named.pop() if len(named) == 1 else None

    def prompts_for_classes(self) -> list[str]:
        return [self.caption(index, 0) for index in range(self.num_classes)]


class DigitCaptioner(_ClassCaptioner):
    """Handwritten digits (``digits`` and ``mnist``): "a handwritten seven", "the digit 7", ..."""

    num_classes = 10
    templates = (
        "a handwritten {word}",
        "the digit {digit}",
        "a drawing of the number {word}",
        "a picture of {a} {digit}",
        "a handwritten digit {word}",
        "the number {digit} written by hand",
    )

    def _fields(self, label: Any) -> dict[str, str]:
        index = self._class_index(label)
        return {"word": DIGIT_WORDS[index], "digit": str(index), "a": _article(str(index))}

    def _class_words(self) -> dict[str, int]:
        return {**{word: index for index, word in enumerate(DIGIT_WORDS)}, **{str(index): index for index in range(10)}}


class Cifar10Captioner(_ClassCaptioner):
    """CIFAR-10: "a photo of a cat", "a small picture of a cat", "an image of the cat", ..."""

    num_classes = 10
    templates = (
        "a photo of {a} {name}",
        "a small picture of {a} {name}",
        "an image of the {name}",
        "a blurry photo of {a} {name}",
        "a low resolution photo of the {name}",
        "a tiny image of {a} {name}",
    )

    def _fields(self, label: Any) -> dict[str, str]:
        name = CIFAR10_CLASSES[self._class_index(label)]
        return {"name": name, "a": _article(name)}

    def _class_words(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(CIFAR10_CLASSES)}


# A face is described by a handful of its most visible attributes, always in this order:
# "a smiling young woman with blond hair and bangs wearing eyeglasses".
_ADJECTIVES = (("Smiling", "smiling"), ("Young", "young"))
# CelebA can mark several hair colours at once; the first one listed here is named.
_HAIR_COLOURS = (("Black_Hair", "black"), ("Blond_Hair", "blond"), ("Brown_Hair", "brown"), ("Gray_Hair", "gray"))
# (attribute, the word that introduces it, its phrase), most visible first after the hair colour.
_FEATURES = (
    ("Eyeglasses", "wearing", "eyeglasses"),
    ("Wearing_Hat", "wearing", "a hat"),
    ("Mustache", "with", "a mustache"),
    ("Bangs", "with", "bangs"),
)
# At most this many of hair colour and the features are named, which keeps every caption within 16 words
# (the default text length): the longest have 15, like "a portrait of a smiling young woman with blond hair
# wearing eyeglasses and a hat".
_MAX_FEATURES = 3


class CelebACaptioner(Captioner):
    """CelebA faces from their 40 attributes: "a smiling woman with blond hair wearing eyeglasses", ...

    Labels are the 0/1 vector of all 40 attributes (``data.label_attr=null``). The captions name sex, smile, age,
    hair colour, eyeglasses, hat, mustache and bangs; the other attributes are too subtle to be worth words.
    """

    single_label = False

    templates = (
        "a {face}",
        "a photo of a {face}",
        "a portrait of a {face}",
        "the face of a {face}",
        "a picture of a {face}",
    )
    # Attribute combinations for evaluation prompts: both sexes, each hair colour and each feature at least once.
    _PROMPT_ATTRIBUTES = (
        (),
        ("Male",),
        ("Smiling", "Young", "Blond_Hair"),
        ("Male", "Black_Hair", "Eyeglasses"),
        ("Male", "Gray_Hair", "Mustache"),
        ("Young", "Brown_Hair", "Bangs"),
        ("Male", "Smiling", "Young", "Wearing_Hat"),
        ("Smiling", "Black_Hair", "Eyeglasses"),
    )

    @staticmethod
    def attribute_vector(*names: str) -> torch.Tensor:
        """The 40-attribute label with ``names`` present and every other attribute absent."""
        unknown = sorted(set(names) - set(CELEBA_ATTRIBUTES))
        if unknown:
            raise ValueError(f"unknown CelebA attributes {unknown}; the attributes are {' '.join(CELEBA_ATTRIBUTES)}")
        return torch.tensor([float(name in names) for name in CELEBA_ATTRIBUTES])

    def _fields(self, label: Any) -> dict[str, str]:
        values = torch.as_tensor(label)
        if values.shape != (len(CELEBA_ATTRIBUTES),):
            raise ValueError(
                f"expected the vector of all {len(CELEBA_ATTRIBUTES)} CelebA attributes (data.label_attr=null), "
                f"got a label of shape {tuple(values.shape)}"
            )
        # > 0.5 reads 0/1 labels as stored, and the -1/1 of list_attr_celeba.txt as well.
        present = dict(zip(CELEBA_ATTRIBUTES, (value > 0.5 for value in values.tolist())))
        features = [("with", f"{colour} hair") for attribute, colour in _HAIR_COLOURS if present[attribute]][:1]
        features += [(verb, phrase) for attribute, verb, phrase in _FEATURES if present[attribute]]
        features = features[:_MAX_FEATURES]
        words = [word for attribute, word in _ADJECTIVES if present[attribute]]
        words.append("man" if present["Male"] else "woman")
        for verb in ("with", "wearing"):
            phrases = [phrase for phrase_verb, phrase in features if phrase_verb == verb]
            if phrases:
                words += [verb, " and ".join(phrases)]
        return {"face": " ".join(words)}

    def _field_words(self) -> set[str]:
        phrases = [word for _, word in _ADJECTIVES] + ["man", "woman", "with", "wearing", "and", "hair"]
        phrases += [colour for _, colour in _HAIR_COLOURS] + [phrase for _, _, phrase in _FEATURES]
        return {word for phrase in phrases for word in phrase.split()}

    def class_of(self, caption: str) -> int | None:
        raise ValueError(
            "CelebA captions name several attributes, not one class: caption accuracy needs a single-label "
            "dataset (digits, mnist or cifar10)"
        )

    def prompts_for_classes(self) -> list[str]:
        return [self.caption(self.attribute_vector(*names), 0) for names in self._PROMPT_ATTRIBUTES]


def captioner_for(dataset: str) -> Captioner:
    """The captioner of a dataset by its config name (``data=...``)."""
    if dataset in ("digits", "mnist"):
        return DigitCaptioner()
    if dataset == "cifar10":
        return Cifar10Captioner()
    if dataset == "celeba":
        return CelebACaptioner()
    raise ValueError(
        f"no captions for dataset {dataset!r}: captions are made from class labels, so text-to-image training "
        f"needs a labelled dataset, one of {', '.join(_DATASETS)}"
    )


class LabelCaptions(CaptionSource):
    """Captions written from class labels by a ``Captioner`` (digits, MNIST, CIFAR-10, CelebA)."""

    # A corpus from at most this many distinct labels: CelebA has ~100k attribute combinations, and a tokenizer
    # learns the templates' words from far fewer.
    MAX_CORPUS_LABELS = 2000

    def __init__(self, captioner: Captioner, labels: torch.Tensor) -> None:
        """``labels``: the training split's labels, whose captions make up the corpus."""
        self.captioner = captioner
        distinct = torch.unique(torch.as_tensor(labels), dim=0)
        self.corpus_labels = distinct[: self.MAX_CORPUS_LABELS]

    def draw(self, labels: torch.Tensor) -> list[str]:
        return self.captioner.captions(labels.cpu())

    def first(self, labels: torch.Tensor) -> list[str]:
        return [self.captioner.caption(label, template=0) for label in labels.cpu()]

    def corpus(self) -> list[str]:
        return [
            self.captioner.caption(label, template)
            for label in self.corpus_labels
            for template in range(self.captioner.num_templates())
        ]

    def prompts(self, count: int) -> list[str]:
        return self.captioner.prompts_for_classes()[:count]
