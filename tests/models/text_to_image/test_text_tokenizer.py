"""The text tokenizers: the word tokenizer (exact ids and masks, round trips through decode and through a
checkpoint, the null caption, its errors) and the byte-level BPE (any text encodes, truncation, cache, files)."""

import io
import json

import pytest
import torch

from parti_exp.data.captions.labels import CELEBA_ATTRIBUTES, CelebACaptioner, Cifar10Captioner, DigitCaptioner
from parti_exp.models.text_to_image.text_tokenizer import BPETokenizer, WordTokenizer, tokenizer_from_state


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


# The byte-level BPE tokenizer, trained on captions.
CORPUS = [f"a handwritten {word}" for word in ("zero", "one", "two", "three")] + ["a red bus parked on a street"] * 3


def bpe(max_len: int = 12, **kwargs) -> BPETokenizer:
    return BPETokenizer.train(CORPUS, vocab_size=300, max_len=max_len, **kwargs)


def test_bpe_round_trips_its_captions_and_ends_each_with_end():
    tokenizer = bpe()
    ids, mask = tokenizer.encode(CORPUS)
    assert [text.strip() for text in tokenizer.decode(ids)] == CORPUS
    lengths = mask.sum(1)
    assert (ids[torch.arange(len(CORPUS)), lengths - 1] == tokenizer.end_id).all()
    assert mask.sum() == lengths.sum() and (mask.cumsum(1)[:, -1] == lengths).all()
    assert 259 <= tokenizer.vocab_size <= 300


def test_bpe_encodes_any_text_unseen_words_other_scripts_and_nothing():
    tokenizer = bpe(max_len=64)
    texts = ["a zebra in Zürich", "猫が ピアノを弾く 🎹", "", "\x00\x07"]
    ids, mask = tokenizer.encode(texts)
    assert mask.any(1).all()  # every row has at least <end>
    assert tokenizer.decode(ids)[0].strip() == "a zebra in zürich"  # lower-cased, nothing unknown
    assert tokenizer.decode(ids)[1].strip() == "猫が ピアノを弾く 🎹"


def test_bpe_lower_case_is_an_option():
    assert bpe(lowercase=False).decode(bpe(lowercase=False).encode(["A Red Bus"])[0])[0].strip() == "A Red Bus"


def test_a_prompt_longer_than_max_len_is_cut_with_a_warning_naming_what_was_dropped(caplog):
    tokenizer = bpe(max_len=4)
    caption = "a red bus parked on a street"
    full = tokenizer.token_counts([caption])[0]
    with caplog.at_level("WARNING"):
        ids, mask = tokenizer.encode([caption], warn=True)
    assert mask.all() and ids[0, -1] == tokenizer.end_id
    assert f"has {full} tokens, more than max_text_len=4: the last {full - 4} were dropped" in caplog.text


def test_bpe_state_is_plain_data_and_rebuilds_the_same_ids():
    tokenizer = bpe()
    state = tokenizer.state_dict()
    assert set(state) == {"kind", "json", "max_len"} and isinstance(state["json"], str)
    again = tokenizer_from_state(state)
    assert torch.equal(again.encode(CORPUS)[0], tokenizer.encode(CORPUS)[0])
    assert isinstance(tokenizer_from_state(WordTokenizer(["a"]).state_dict()), WordTokenizer)


def test_bpe_is_trained_once_per_corpus_and_cached(tmp_path, monkeypatch):
    first = BPETokenizer.cached(CORPUS, tmp_path, 300, 12)
    monkeypatch.setattr(BPETokenizer, "train", lambda *a, **k: pytest.fail("trained again"))
    again = BPETokenizer.cached(CORPUS, tmp_path, 300, 12)
    assert torch.equal(again.encode(CORPUS)[0], first.encode(CORPUS)[0])
    monkeypatch.undo()
    BPETokenizer.cached(CORPUS + ["a new caption"], tmp_path, 300, 12)
    assert len(list(tmp_path.glob("bpe-300-*.json"))) == 2


def test_a_users_tokenizer_file_gets_the_special_tokens_added(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    users = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "cat": 2}, unk_token="[UNK]"))
    users.pre_tokenizer = pre_tokenizers.Whitespace()
    users.save(str(tmp_path / "tokenizer.json"))
    tokenizer = BPETokenizer.from_file(tmp_path / "tokenizer.json", max_len=6)
    assert tokenizer.vocab_size == 6 and tokenizer.end_id == 5
    ids, _ = tokenizer.encode(["a cat", "a dog"])
    assert ids[0, :3].tolist() == [1, 2, 5] and ids[1, :3].tolist() == [1, 0, 5]
    with pytest.raises(FileNotFoundError, match="text_tokenizer.path=.* does not exist"):
        BPETokenizer.from_file(tmp_path / "none.json", max_len=6)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="is not a tokenizers JSON file"):
        BPETokenizer.from_file(tmp_path / "bad.json", max_len=6)


def test_bpe_refuses_a_vocabulary_smaller_than_the_bytes():
    with pytest.raises(ValueError, match="vocab_size must be an integer >= 259"):
        BPETokenizer.train(CORPUS, vocab_size=100, max_len=8)
