import pytest
import torch
import torch.nn.functional as F

from parti_exp.nets.transformer import TextToImageTransformer

# Tiny models: intra-op threads only add waiting (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")

GRID = (3, 4)
N = GRID[0] * GRID[1]
CODEBOOK = 11
TEXT_VOCAB = 20


def tiny_model(seed: int = 0, **kw) -> TextToImageTransformer:
    torch.manual_seed(seed)
    options = dict(token_grid=GRID, max_text_len=8, dim=32, encoder_depth=2, decoder_depth=2, heads=4)
    return TextToImageTransformer(TEXT_VOCAB, CODEBOOK, **{**options, **kw}).eval()


def batch(b: int = 3, length: int = 5, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    text_ids = torch.randint(3, TEXT_VOCAB, (b, length), generator=g)
    text_mask = torch.ones(b, length, dtype=torch.bool)
    text_mask[0, 3:] = False  # a shorter caption, padded
    text_ids[~text_mask] = 0
    tokens = torch.randint(0, CODEBOOK, (b, N), generator=g)
    return text_ids, text_mask, tokens


def test_shapes_and_parameters_are_initialised_small():
    model = tiny_model()
    text_ids, text_mask, tokens = batch()
    assert model.encode_text(text_ids, text_mask).shape == (3, 5, 32)
    assert model(text_ids, text_mask, tokens).shape == (3, N, CODEBOOK)
    assert model.head.weight.std().item() == pytest.approx(0.02, rel=0.2)


@pytest.mark.parametrize("t", [0, 4, N - 3])
def test_logits_do_not_see_future_image_tokens(t):
    model = tiny_model()
    text_ids, text_mask, tokens = batch()
    changed = tokens.clone()
    changed[:, t + 1 :] = (changed[:, t + 1 :] + 1) % CODEBOOK
    before, after = model(text_ids, text_mask, tokens), model(text_ids, text_mask, changed)
    # logits[:, t + 1] predicts token t + 1 from tokens 0..t, so it must not move either.
    assert torch.equal(before[:, : t + 2], after[:, : t + 2])
    # The position after does see the changed token: the check above is not vacuous.
    assert not torch.allclose(before[:, t + 2], after[:, t + 2])


def test_logits_depend_on_the_text():
    model = tiny_model()
    text_ids, text_mask, tokens = batch()
    other = text_ids.clone()
    other[:, 1] = (other[:, 1] + 1) % TEXT_VOCAB
    before, changed = model(text_ids, text_mask, tokens), model(other, text_mask, tokens)
    for row in range(3):
        assert not torch.allclose(before[row], changed[row]), f"caption {row} changed but its logits did not"


def test_trailing_padding_changes_nothing():
    model = tiny_model()
    text_ids, text_mask, tokens = batch()
    padded_ids = torch.cat([text_ids, torch.zeros(3, 3, dtype=torch.long)], dim=1)
    padded_mask = torch.cat([text_mask, torch.zeros(3, 3, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(
        model(padded_ids, padded_mask, tokens), model(text_ids, text_mask, tokens), atol=1e-5, rtol=0
    )
    # Ids under a False mask are ignored too, not only id 0.
    garbage_ids = padded_ids.masked_fill(~padded_mask, 7)
    torch.testing.assert_close(
        model(garbage_ids, padded_mask, tokens), model(text_ids, text_mask, tokens), atol=1e-5, rtol=0
    )


def test_cached_decoding_matches_teacher_forcing_and_the_uncached_path():
    model = tiny_model()
    text_ids, text_mask, tokens = batch()
    teacher_forced = model(text_ids, text_mask, tokens)
    memory = model.encode_text(text_ids, text_mask)
    cache = model.new_cache(3)
    token = None
    for t in range(N):
        step = model.decode_step(token, memory, text_mask, cache)
        torch.testing.assert_close(step, teacher_forced[:, t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            step, model.logits_uncached(text_ids, text_mask, tokens[:, :t]), atol=1e-5, rtol=1e-5
        )
        token = tokens[:, t]
    assert cache.length == N
    with pytest.raises(ValueError, match="cache is full"):
        model.decode_step(token, memory, text_mask, cache)


def test_decode_step_refuses_inputs_out_of_order():
    # The cache's length, not the caller, decides a token's position: BOS comes first, and only first.
    model = tiny_model()
    text_ids, text_mask, tokens = batch()
    memory = model.encode_text(text_ids, text_mask)
    with pytest.raises(ValueError, match="position 0"):
        model.decode_step(tokens[:, 0], memory, text_mask, model.new_cache(3))
    cache = model.new_cache(3)
    model.decode_step(None, memory, text_mask, cache)
    with pytest.raises(ValueError, match="position 1"):
        model.decode_step(None, memory, text_mask, cache)


def test_runs_under_bf16_autocast():
    model = tiny_model()
    text_ids, text_mask, tokens = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(text_ids, text_mask, tokens)
        memory = model.encode_text(text_ids, text_mask)
        cache = model.new_cache(3)
        first = model.decode_step(None, memory, text_mask, cache)
        second = model.decode_step(tokens[:, 0], memory, text_mask, cache)
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits).all()
    torch.testing.assert_close(second.float(), logits[:, 1].float(), atol=0.05, rtol=0.05)
    torch.testing.assert_close(first.float(), logits[:, 0].float(), atol=0.05, rtol=0.05)


def test_overfits_one_batch():
    model = tiny_model(dim=32).train()
    text_ids, text_mask, tokens = batch(b=4, seed=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(400):
        loss = F.cross_entropy(model(text_ids, text_mask, tokens).flatten(0, 1), tokens.flatten())
        if loss.item() < 0.05:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(dim=30, heads=4), r"dim \(30\) must be divisible by heads \(4\)"),
        (dict(token_grid=(0, 4)), "token_grid"),
        (dict(decoder_depth=0), "decoder_depth must be > 0"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_bad_constructor_arguments_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        tiny_model(**kw)
