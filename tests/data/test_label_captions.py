"""Captions from labels: their exact wording, a vocabulary that is complete and exact, class_of inverting
caption, and template draws that follow the generator."""

import itertools
import re

import pytest
import torch

from parti_exp.data.captions.labels import (
    CELEBA_ATTRIBUTES,
    CelebACaptioner,
    Cifar10Captioner,
    DigitCaptioner,
    captioner_for,
)

# The attributes CelebA captions can name; every other attribute must leave the caption unchanged.
NAMED = "Male Young Smiling Black_Hair Blond_Hair Brown_Hair Gray_Hair Eyeglasses Wearing_Hat Mustache Bangs".split()


def celeba_labels(seed: int = 0) -> torch.Tensor:
    """Every combination of the named attributes (2048), the other 29 attributes random."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (2 ** len(NAMED), len(CELEBA_ATTRIBUTES)), generator=generator).float()
    for row, values in enumerate(itertools.product((0.0, 1.0), repeat=len(NAMED))):
        for name, value in zip(NAMED, values):
            labels[row, CELEBA_ATTRIBUTES.index(name)] = value
    return labels


def all_captions(captioner) -> list[str]:
    labels = celeba_labels() if isinstance(captioner, CelebACaptioner) else range(10)
    return [captioner.caption(label, t) for label in labels for t in range(captioner.num_templates())]


CAPTIONERS = [DigitCaptioner(), Cifar10Captioner(), CelebACaptioner()]


@pytest.mark.parametrize(
    ("label", "template", "expected"),
    [
        (7, 0, "a handwritten seven"),
        (7, 1, "the digit 7"),
        (7, 2, "a drawing of the number seven"),
        (7, 3, "a picture of a 7"),
        (8, 3, "a picture of an 8"),
        (0, 5, "the number 0 written by hand"),
    ],
)
def test_digit_captions(label, template, expected):
    assert DigitCaptioner().caption(label, template) == expected


@pytest.mark.parametrize(
    ("label", "template", "expected"),
    [
        (3, 0, "a photo of a cat"),
        (3, 1, "a small picture of a cat"),
        (3, 2, "an image of the cat"),
        (0, 0, "a photo of an airplane"),
        (1, 1, "a small picture of an automobile"),
        (9, 4, "a low resolution photo of the truck"),
    ],
)
def test_cifar10_captions(label, template, expected):
    assert Cifar10Captioner().caption(label, template) == expected


@pytest.mark.parametrize(
    ("attributes", "template", "expected"),
    [
        ((), 0, "a woman"),
        (("Male",), 1, "a photo of a man"),
        (("Smiling", "Blond_Hair", "Eyeglasses"), 0, "a smiling woman with blond hair wearing eyeglasses"),
        (("Male", "Young", "Gray_Hair", "Mustache"), 2, "a portrait of a young man with gray hair and a mustache"),
        (("Bangs", "Wearing_Hat"), 3, "the face of a woman with bangs wearing a hat"),
        # Two hair colours: the first in the fixed order is named.
        (("Blond_Hair", "Black_Hair"), 0, "a woman with black hair"),
        # Five features: only the three most visible are named.
        (
            ("Male", "Smiling", "Young", "Brown_Hair", "Eyeglasses", "Wearing_Hat", "Mustache", "Bangs"),
            4,
            "a picture of a smiling young man with brown hair wearing eyeglasses and a hat",
        ),
        # Attributes too subtle to caption change nothing.
        (("Male", "Big_Nose", "Oval_Face", "Attractive"), 0, "a man"),
    ],
)
def test_celeba_captions(attributes, template, expected):
    captioner = CelebACaptioner()
    assert captioner.caption(captioner.attribute_vector(*attributes), template) == expected


def test_celeba_reads_minus_one_as_absent_like_the_attribute_file():
    captioner = CelebACaptioner()
    zero_one = captioner.attribute_vector("Smiling", "Male", "Eyeglasses")
    assert (
        captioner.caption(zero_one * 2 - 1, 1)
        == captioner.caption(zero_one, 1)
        == ("a photo of a smiling man wearing eyeglasses")
    )


@pytest.mark.parametrize("captioner", CAPTIONERS, ids=type)
def test_captions_are_lower_case_words_and_the_vocabulary_is_exactly_their_words(captioner):
    captions = all_captions(captioner)
    for caption in captions:
        assert re.fullmatch(r"[a-z0-9]+( [a-z0-9]+)*", caption), caption
    vocabulary = captioner.vocabulary()
    assert vocabulary == sorted(set(vocabulary))
    assert set(vocabulary) == {word for caption in captions for word in caption.split()}


@pytest.mark.parametrize("captioner", CAPTIONERS, ids=type)
def test_templates_give_different_captions(captioner):
    label = CelebACaptioner.attribute_vector("Smiling") if isinstance(captioner, CelebACaptioner) else 4
    captions = [captioner.caption(label, t) for t in range(captioner.num_templates())]
    assert captioner.num_templates() >= 4
    assert len(set(captions)) == captioner.num_templates()


@pytest.mark.parametrize("captioner", [DigitCaptioner(), Cifar10Captioner()], ids=type)
def test_class_of_inverts_caption_for_every_template(captioner):
    for label in range(10):
        for template in range(captioner.num_templates()):
            assert captioner.class_of(captioner.caption(label, template)) == label


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("the digit 2", 2),
        ("a handwritten two", 2),
        ("The Digit 2.", 2),
        ("nine", 9),
        ("a handwritten digit", None),
        ("a seven and a two", None),
        ("the number 12", None),
        ("", None),
    ],
)
def test_digit_class_of_user_prompts(prompt, expected):
    assert DigitCaptioner().class_of(prompt) == expected


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [("a dog", 5), ("A photo of a Ship!", 8), ("a photo of a cat and a dog", None), ("a photo of a car", None)],
)
def test_cifar10_class_of_user_prompts(prompt, expected):
    assert Cifar10Captioner().class_of(prompt) == expected


def test_celeba_has_no_class_to_read_back():
    with pytest.raises(ValueError, match="single-label"):
        CelebACaptioner().class_of("a smiling woman")


def test_seeded_generator_draws_the_same_templates():
    captioner = DigitCaptioner()
    labels = torch.arange(10).repeat(8)
    first = captioner.captions(labels, torch.Generator().manual_seed(3))
    assert first == captioner.captions(labels, torch.Generator().manual_seed(3))
    assert first != captioner.captions(labels, torch.Generator().manual_seed(4))
    for label, caption in zip(labels.tolist(), first):
        assert caption in {captioner.caption(label, t) for t in range(captioner.num_templates())}
    # 80 draws from 6 templates: every template is used.
    zeros = captioner.captions(torch.zeros(80, dtype=torch.long), torch.Generator().manual_seed(0))
    assert set(zeros) == {captioner.caption(0, t) for t in range(captioner.num_templates())}


def test_celeba_captions_one_per_row():
    captioner = CelebACaptioner()
    labels = torch.stack([captioner.attribute_vector("Male"), captioner.attribute_vector("Smiling")])
    captions = captioner.captions(labels, torch.Generator().manual_seed(0))
    assert len(captions) == 2
    assert captions[0] in {captioner.caption(labels[0], t) for t in range(captioner.num_templates())}
    assert captions[0].endswith("a man") and captions[1].endswith("a smiling woman")


def test_prompts_for_classes():
    digits = DigitCaptioner()
    assert digits.prompts_for_classes()[7] == "a handwritten seven"
    assert [digits.class_of(prompt) for prompt in digits.prompts_for_classes()] == list(range(10))
    cifar = Cifar10Captioner()
    assert cifar.prompts_for_classes() == [cifar.caption(index, 0) for index in range(10)]
    assert [cifar.class_of(prompt) for prompt in cifar.prompts_for_classes()] == list(range(10))
    celeba = CelebACaptioner().prompts_for_classes()
    assert len(celeba) == len(set(celeba)) >= 6
    assert "a smiling young woman with blond hair" in celeba
    assert {"man", "woman", "black", "blond", "brown", "gray", "eyeglasses", "hat", "mustache", "bangs"} <= {
        word for prompt in celeba for word in prompt.split()
    }


@pytest.mark.parametrize(
    ("dataset", "kind"),
    [("digits", DigitCaptioner), ("mnist", DigitCaptioner), ("cifar10", Cifar10Captioner), ("celeba", CelebACaptioner)],
)
def test_captioner_for(dataset, kind):
    assert type(captioner_for(dataset)) is kind


def test_captioner_for_unlabelled_data_names_the_choices():
    with pytest.raises(ValueError, match="labelled dataset, one of digits, mnist, cifar10, celeba"):
        captioner_for("folder")


@pytest.mark.parametrize(
    ("captioner", "label", "template", "match"),
    [
        (DigitCaptioner(), 10, 0, "class index in 0..9"),
        (DigitCaptioner(), 2.0, 0, "class index"),
        (Cifar10Captioner(), -1, 0, "class index in 0..9"),
        (DigitCaptioner(), 3, 6, "template must be in 0..5"),
        (CelebACaptioner(), torch.zeros(2), 0, "label_attr=null"),
    ],
)
def test_invalid_labels_and_templates(captioner, label, template, match):
    with pytest.raises(ValueError, match=match):
        captioner.caption(label, template)


def test_unknown_celeba_attribute():
    with pytest.raises(ValueError, match="Smilling"):
        CelebACaptioner.attribute_vector("Smilling")
