"""The word tokenizer: exact ids and masks, round trips through decode and through a checkpoint, the null
caption, and the errors it raises."""

import io
import json

import pytest
import torch

from parti_exp.data.label_captions import CELEBA_ATTRIBUTES, CelebACaptioner, Cifar10Captioner, DigitCaptioner
from parti_exp.parti.text_tokenizer import WordTokenizer


def every_caption(captioner) -> list[str]:
    if isinstance(captioner, CelebACaptioner):
        generator = torch.Generator().manual_seed(0)
        labels = torch.randint(0, 2, (300, len(CELEBA_ATTRIBUTES)), generator=generator)
        # The longest captions name three features and both adjectives.
        labels = torch.cat([labels, captioner.attribute_vector(*CELEBA_ATTRIBUTES)[None]])
    else:
        labels = range(10)
    return [captioner.caption(label, t) for label in labels for t in range(captioner.num_templates())]


def test_ids_and_mask_layout():
    tokenizer = WordTokenizer(["a", "b", "c"], max_len=4)
    ids, mask = tokenizer.encode(["b a", "c", "a b c a"])
    assert ids.dtype == torch.int64 and mask.dtype == torch.bool
    assert ids.tolist() == [[4, 3, 0, 0], [5, 0, 0, 0], [3, 4, 5, 3]]
    assert mask.tolist() == [[True, True, False, False], [True, False, False, False], [True] * 4]
    assert tokenizer.vocab_size == 6


def test_unknown_words_are_unk_and_case_is_ignored():
    tokenizer = WordTokenizer(["a", "cat"], max_len=4)
    ids, mask = tokenizer.encode(["a dog", "A  Cat"])
    assert ids.tolist() == [[3, 1, 0, 0], [3, 4, 0, 0]]
    assert mask.sum(1).tolist() == [2, 2]
    assert tokenizer.decode(ids) == ["a <unk>", "a cat"]


@pytest.mark.parametrize("captioner", [DigitCaptioner(), Cifar10Captioner(), CelebACaptioner()], ids=type)
def test_every_caption_round_trips_at_the_default_length(captioner):
    tokenizer = WordTokenizer.from_captioner(captioner)
    assert tokenizer.max_len == 16
    assert tokenizer.vocab_size == len(captioner.vocabulary()) + 3
    captions = every_caption(captioner)
    ids, mask = tokenizer.encode(captions)
    assert ids.shape == mask.shape == (len(captions), 16)
    assert not (ids == WordTokenizer.UNK_ID).any()
    assert mask.sum(1).tolist() == [len(caption.split()) for caption in captions]
    assert tokenizer.decode(ids) == captions


def test_state_dict_round_trip_gives_identical_ids():
    tokenizer = WordTokenizer.from_captioner(DigitCaptioner(), max_len=8)
    state = tokenizer.state_dict()
    # Plain Python: JSON-serialisable and loadable from a checkpoint with weights_only=True.
    assert json.loads(json.dumps(state)) == state
    buffer = io.BytesIO()
    torch.save({"text_tokenizer": state}, buffer)
    buffer.seek(0)
    restored = WordTokenizer.from_state_dict(torch.load(buffer, weights_only=True)["text_tokenizer"])
    captions = every_caption(DigitCaptioner())
    assert restored.max_len == 8 and restored.vocab_size == tokenizer.vocab_size
    for left, right in zip(restored.encode(captions), tokenizer.encode(captions)):
        assert torch.equal(left, right)


def test_from_state_dict_rejects_other_dicts():
    with pytest.raises(ValueError, match="missing \\['max_len'\\]"):
        WordTokenizer.from_state_dict({"words": ["a"]})


def test_null_caption():
    tokenizer = WordTokenizer(["a"], max_len=5)
    ids, mask = tokenizer.null(3)
    assert ids.dtype == torch.int64 and mask.dtype == torch.bool
    assert ids.tolist() == [[2, 0, 0, 0, 0]] * 3
    assert mask.tolist() == [[True, False, False, False, False]] * 3
    assert tokenizer.decode(ids) == ["", "", ""]


def test_too_long_caption_names_it_and_the_setting():
    tokenizer = WordTokenizer(["a"], max_len=3)
    with pytest.raises(ValueError, match=r"'a a a a' has 4 words.*model\.max_text_len"):
        tokenizer.encode(["a", "a a a a"])


def test_empty_caption_is_refused():
    with pytest.raises(ValueError, match="null"):
        WordTokenizer(["a"]).encode(["  "])


def test_decode_refuses_ids_outside_the_vocabulary():
    tokenizer = WordTokenizer(["a"], max_len=2)
    with pytest.raises(ValueError, match="0..3"):
        tokenizer.decode(torch.tensor([[3, 4]]))
    with pytest.raises(ValueError, match="batch x length"):
        tokenizer.decode(torch.tensor([3, 0]))


@pytest.mark.parametrize(
    ("words", "max_len", "match"),
    [
        (["a", "b", "a"], 4, "duplicate word 'a'"),
        (["a", "<pad>"], 4, "duplicate word '<pad>'"),
        (["a", ""], 4, "non-empty"),
        (["a b"], 4, "whitespace"),
        (["a\t"], 4, "whitespace"),
        (["Cat"], 4, "lower case"),
        (["a"], 0, "max_len"),
        (["a"], 2.5, "max_len"),
    ],
)
def test_invalid_vocabularies(words, max_len, match):
    with pytest.raises(ValueError, match=match):
        WordTokenizer(words, max_len)
