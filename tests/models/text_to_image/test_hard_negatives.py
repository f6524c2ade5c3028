"""NegCLIP's hard negatives: which false captions are made from a caption, and how they enter the loss."""

import math

import pytest
import torch

from parti_exp.models.text_to_image.hard_negatives import WordOrderNegatives
from parti_exp.models.text_to_image.info_nce import symmetric_info_nce

MIRRORS = [["left", "right"], ["above", "below"]]


def unit(rows):
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


def test_a_relation_gets_its_digits_exchanged_or_its_relation_mirrored():
    negatives = WordOrderNegatives(MIRRORS)
    assert negatives.edits("a 3 to the left of a seven") == [
        "a seven to the left of a 3",  # the digits exchanged
        "a 3 to the right of a seven",  # the relation mirrored
    ]
    assert negatives.edits("a 2 below an 8") == ["a 8 below an 2", "a 2 above an 8"]
    assert negatives.edits("A man riding a horse") == ["A horse riding a man"]  # case kept; stop words compared lower


def test_a_caption_that_no_edit_makes_false_has_no_negative():
    negatives = WordOrderNegatives(MIRRORS)
    assert negatives.edits("a seven") == []
    assert negatives.edits("the 7 and the 7") == []  # exchanging equal words says the same
    first, second = negatives(["a seven", "a 3 above a 7"])
    assert first is None
    assert second in ("a 7 above a 3", "a 3 below a 7")


def test_the_edit_is_drawn_with_the_global_rng():
    negatives = WordOrderNegatives(MIRRORS)
    captions = ["a 3 to the left of a 7"] * 200
    torch.manual_seed(1)
    first = negatives(captions)
    torch.manual_seed(1)
    assert negatives(captions) == first  # reseeded: the same draw (exact resume)
    assert set(first) == {"a 7 to the left of a 3", "a 3 to the right of a 7"}


def test_mirrors_must_be_pairs_of_single_words():
    with pytest.raises(ValueError, match=r"mirrors: each entry is two single words, got \['left'\]"):
        WordOrderNegatives([["left"]])
    with pytest.raises(ValueError, match="two single words"):
        WordOrderNegatives([["to the left", "right"]])


def test_a_hard_negative_is_one_more_caption_each_image_is_ranked_against():
    images = unit([[1.0, 0.0], [0.0, 1.0]])
    texts = unit([[1.0, 0.0], [0.6, 0.8]])
    negatives = unit([[0.8, 0.6], [1.0, 0.0]])
    scale = torch.tensor(10.0)
    # Each image against both texts and both negatives: 10 x its cosine similarity with each.
    rows = [[10.0, 6.0, 8.0, 10.0], [0.0, 8.0, 6.0, 0.0]]
    image_to_text = sum(math.log(sum(math.exp(v) for v in row)) - row[i] for i, row in enumerate(rows)) / 2
    text_to_image = (math.log1p(math.exp(-10)) + math.log1p(math.exp(-2))) / 2  # unchanged by the negatives
    both = torch.tensor([True, True])
    loss = symmetric_info_nce(images, texts, scale, negatives, both)
    assert float(loss) == pytest.approx((image_to_text + text_to_image) / 2, rel=1e-6)
    # Masked out, the negatives change nothing.
    without = symmetric_info_nce(images, texts, scale)
    masked = symmetric_info_nce(images, texts, scale, negatives, torch.tensor([False, False]))
    assert float(masked) == pytest.approx(float(without), rel=1e-6)
    assert float(loss) > float(without)
    with pytest.raises(ValueError, match="hard negatives need B x E embeddings"):
        symmetric_info_nce(images, texts, scale, negatives[:1], both)
