import math

import pytest
import torch

from parti_exp.models.text_to_image.sampling import SamplingConfig, filter_logits, sample_image_tokens
from parti_exp.nets.transformer import TextToImageTransformer

GRID = (3, 3)
N = GRID[0] * GRID[1]
CODEBOOK = 13
NULL_IDS = torch.tensor([[2]])
NULL_MASK = torch.tensor([[True]])


@pytest.fixture
def model():
    torch.manual_seed(0)
    net = TextToImageTransformer(20, CODEBOOK, token_grid=GRID, max_text_len=6, dim=32, decoder_depth=2, heads=4)
    # Larger logits than at initialisation, so the distributions are far from uniform and the text matters.
    with torch.no_grad():
        net.head.weight.mul_(50)
    return net.eval()


@pytest.fixture
def text():
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0], [11, 12, 13, 0]])
    return ids, ids != 0


def sample(model, text, seed=0, **config) -> torch.Tensor:
    return sample_image_tokens(
        model, *text, NULL_IDS, NULL_MASK, SamplingConfig(**config), torch.Generator().manual_seed(seed)
    )


def reference_sampling(model, text_ids, text_mask, guidance_scale=1.0, null=None, seed=0, temperature=1.0, **filters):
    """Slow sampler written from the definitions: whole-prefix logits, guidance by two separate passes."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.empty(text_ids.shape[0], 0, dtype=torch.long)
    for _ in range(N):
        logits = model.logits_uncached(text_ids, text_mask, tokens)
        if guidance_scale != 1:
            uncond = model.logits_uncached(*null, tokens)
            logits = uncond + guidance_scale * (logits - uncond)
        probs = filter_logits(logits / temperature, filters.get("top_k"), filters.get("top_p")).softmax(-1)
        tokens = torch.cat([tokens, torch.multinomial(probs, 1, generator=generator)], dim=1)
    return tokens


def test_top_k_filter_keeps_the_k_largest():
    logits = torch.tensor([[1.0, 4.0, 2.0, 3.0], [0.0, -1.0, 5.0, 2.0]])
    inf = float("-inf")
    assert filter_logits(logits, 2, None).tolist() == [[inf, 4.0, inf, 3.0], [inf, inf, 5.0, 2.0]]
    assert torch.equal(filter_logits(logits, 10, None), logits)


def test_top_p_keeps_the_smallest_set_reaching_p():
    # Probabilities 0.15, 0.5, 0.05, 0.3 (sorted: 0.5, 0.3, 0.15, 0.05; cumulative 0.5, 0.8, 0.95, 1).
    logits = torch.tensor([0.15, 0.5, 0.05, 0.3]).log()
    kept = lambda p: torch.isfinite(filter_logits(logits, None, p)).nonzero().flatten().tolist()
    assert kept(0.45) == [1]  # 0.5 alone reaches 0.45
    assert kept(0.75) == [1, 3]  # 0.5 < 0.75, 0.5 + 0.3 >= 0.75
    assert kept(0.9) == [0, 1, 3]
    assert kept(0.99) == [0, 1, 2, 3]
    assert kept(1.0) == [0, 1, 2, 3]
    # Kept logits are unchanged; top-k first, then the nucleus of the renormalised top-k: 0.5 / 0.8 >= 0.6.
    torch.testing.assert_close(filter_logits(logits, None, 0.75)[[1, 3]], logits[[1, 3]])
    assert torch.isfinite(filter_logits(logits, 2, 0.6)).nonzero().flatten().tolist() == [1]
    # Exactly representable masses: with four equal logits, two tokens reach p = 0.5 and the third is not needed.
    assert torch.isfinite(filter_logits(torch.zeros(4), None, 0.5)).sum() == 2


def test_top_k_1_is_greedy_decoding(model, text):
    tokens = sample(model, text, top_k=1)
    # Greedy decoding written out: the argmax of the teacher-forced logits given the greedy prefix.
    logits = model(*text, tokens)
    assert torch.equal(tokens, logits.argmax(-1))
    # Still greedy at any temperature and seed.
    assert torch.equal(sample(model, text, seed=5, top_k=1, temperature=3.0), tokens)


def test_cached_and_uncached_sampling_agree_token_for_token_and_logit_for_logit(model, text):
    recorded: dict[str, list[torch.Tensor]] = {"decode_step": [], "logits_uncached": []}
    for name in recorded:
        method = getattr(model, name)

        def spy(*args, method=method, name=name):
            recorded[name].append(method(*args))
            return recorded[name][-1]

        setattr(model, name, spy)
    for guidance_scale in (1.0, 3.0):
        for log in recorded.values():
            log.clear()
        cached = sample(model, text, guidance_scale=guidance_scale, use_cache=True)
        uncached = sample(model, text, guidance_scale=guidance_scale, use_cache=False)
        assert torch.equal(cached, uncached)
        assert len(recorded["decode_step"]) == len(recorded["logits_uncached"]) == N
        for step, (fast, slow) in enumerate(zip(recorded["decode_step"], recorded["logits_uncached"])):
            assert fast.shape[0] == (3 if guidance_scale == 1 else 6)
            torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5, msg=lambda m, s=step: f"step {s}: {m}")
    # Sampling, not argmax: different seeds give different images.
    assert not torch.equal(cached, sample(model, text, seed=1, guidance_scale=3.0))


@pytest.mark.parametrize("use_cache", [True, False])
def test_guidance_scale_1_is_conditional_sampling(model, text, use_cache):
    tokens = sample(model, text, guidance_scale=1.0, use_cache=use_cache)
    assert torch.equal(tokens, reference_sampling(model, *text))


@pytest.mark.parametrize("use_cache", [True, False])
def test_guidance_scale_0_is_unconditional_sampling(model, text, use_cache):
    null = NULL_IDS.expand(3, -1), NULL_MASK.expand(3, -1)
    tokens = sample(model, text, guidance_scale=0.0, use_cache=use_cache)
    assert torch.equal(tokens, reference_sampling(model, *null))
    # The same as sampling conditionally on the null caption.
    assert torch.equal(tokens, sample(model, null, guidance_scale=1.0, use_cache=use_cache))
    assert not torch.equal(tokens, sample(model, text, guidance_scale=1.0, use_cache=use_cache))


def test_guided_sampling_follows_the_guided_logits(model, text):
    null = NULL_IDS.expand(3, -1), NULL_MASK.expand(3, -1)
    for scale in (0.5, 4.0):
        tokens = sample(model, text, guidance_scale=scale, top_p=0.9)
        assert torch.equal(tokens, reference_sampling(model, *text, guidance_scale=scale, null=null, top_p=0.9))


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_temperature_divides_the_logits(model, text, temperature):
    tokens = sample(model, text, temperature=temperature, top_k=5)
    assert torch.equal(tokens, reference_sampling(model, *text, temperature=temperature, top_k=5))
    assert not torch.equal(tokens, sample(model, text, top_k=5))


def test_null_caption_per_row_and_longer_than_the_text(model, text):
    shared = sample(model, text, guidance_scale=2.0)
    per_row = sample_image_tokens(
        model,
        *text,
        torch.tensor([[2, 0, 0, 0, 0]] * 3),
        torch.tensor([[True, False, False, False, False]] * 3),
        SamplingConfig(guidance_scale=2.0),
        torch.Generator().manual_seed(0),
    )
    assert torch.equal(shared, per_row)


def test_sampling_runs_without_dropout_and_leaves_the_model_mode_alone(text):
    torch.manual_seed(0)
    model = TextToImageTransformer(20, CODEBOOK, token_grid=GRID, max_text_len=6, dim=32, dropout=0.5)
    with torch.no_grad():
        model.head.weight.mul_(50)
    expected = sample(model.eval(), text)
    model.train()
    assert torch.equal(sample(model, text, use_cache=False), expected)
    assert model.training


def test_sampling_under_bf16_autocast(model, text):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tokens = sample(model, text, guidance_scale=2.0, top_k=4, top_p=0.9)
    assert tokens.shape == (3, N) and tokens.dtype == torch.long
    assert 0 <= tokens.min() and tokens.max() < CODEBOOK


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(temperature=0.0), "top_k=1"),
        (dict(temperature=-1.0), "temperature"),
        (dict(top_k=0), "top_k"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(guidance_scale=math.inf), "guidance_scale"),
    ],
)
def test_bad_configs_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        SamplingConfig(**kw)
    if "top_k" in kw or "top_p" in kw:
        with pytest.raises(ValueError, match=match):
            filter_logits(torch.zeros(2, 5), kw.get("top_k"), kw.get("top_p"))
