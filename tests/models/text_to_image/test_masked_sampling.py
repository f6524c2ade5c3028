"""The masked-token decoder (model=muse): the cosine schedule, parallel decoding step by step, guidance, seeds, and
infill that sees both sides of a hole."""

import math

import pytest
import torch

from parti_exp.models.text_to_image.masked_sampling import MaskedSamplingConfig, sample_masked_tokens
from parti_exp.models.text_to_image.masking import mask_counts, masked_after_steps, masked_share, training_mask
from parti_exp.models.text_to_image.sampling import filter_logits
from parti_exp.nets.masked_transformer import MaskedImageTransformer

GRID = (4, 4)
N = GRID[0] * GRID[1]
CODEBOOK = 13
NULL_IDS = torch.tensor([[2]])
NULL_MASK = torch.tensor([[True]])


@pytest.fixture
def model():
    torch.manual_seed(0)
    net = MaskedImageTransformer(20, CODEBOOK, token_grid=GRID, max_text_len=6, dim=32, depth=2, heads=4)
    # Larger logits than at initialisation, so the distributions are far from uniform and the text matters.
    with torch.no_grad():
        net.head.weight.mul_(50)
    return net.eval()


@pytest.fixture
def text():
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0], [11, 12, 13, 0]])
    return ids, ids != 0


def sample(model, text, seed=0, forced=None, keep=None, **config) -> torch.Tensor:
    return sample_masked_tokens(model, *text, NULL_IDS, NULL_MASK, MaskedSamplingConfig(**config),
                                torch.Generator().manual_seed(seed), forced, keep)


def record_inputs(model, monkeypatch) -> list[torch.Tensor]:
    """The token grid the model is given at each call, in call order."""
    seen = []
    predict = model.predict

    def spy(tokens, cross, text_mask):
        seen.append(tokens.clone())
        return predict(tokens, cross, text_mask)

    monkeypatch.setattr(model, "predict", spy)
    return seen


def test_the_cosine_schedule_and_the_training_masks_by_hand():
    share = masked_share(torch.tensor([0.0, 1 / 3, 0.5, 1.0]))
    torch.testing.assert_close(share, torch.tensor([1.0, math.sqrt(3) / 2, math.sqrt(0.5), 0.0]), atol=1e-6, rtol=0)
    # ceil(4 cos(pi r / 2)): r = 0 -> 4, 0.5 -> ceil(2.83) = 3, 0.9 -> ceil(0.63) = 1, 1 -> 0, raised to 1.
    assert mask_counts(torch.tensor([0.0, 0.5, 0.9, 1.0]), 4).tolist() == [4, 3, 1, 1]
    masks = training_mask(2000, 8, torch.Generator().manual_seed(3))
    progress = torch.rand(2000, generator=torch.Generator().manual_seed(3))
    assert torch.equal(masks.sum(1), mask_counts(progress, 8))
    # Which positions: uniform (each one masked as often as the others, up to sampling noise).
    per_position = masks.float().mean(0)
    assert (per_position - per_position.mean()).abs().max() < 0.04
    # The mean share masked is E[ceil(8 cos(pi r / 2))] / 8, a bit above the integral 2 / pi = 0.64.
    assert 0.64 < masks.float().mean() < 0.75


def test_tokens_still_masked_after_each_step_by_hand():
    # 16 tokens in 4 steps: floor(16 cos(pi t / 8)) = 14, 11, 6, then 0.
    assert masked_after_steps([16], 4)[:, 0].tolist() == [14, 11, 6, 0]
    # Fewer tokens than steps: one revealed per step, the last one kept masked until the last step.
    assert masked_after_steps([2], 4)[:, 0].tolist() == [1, 1, 1, 0]
    assert masked_after_steps([0], 3)[:, 0].tolist() == [0, 0, 0]
    for steps in (1, 4, 8, 12):
        counts = masked_after_steps([64], steps)[:, 0].tolist()
        assert counts[-1] == 0 and all(a > b for a, b in zip([64, *counts], counts))


@pytest.mark.parametrize("guidance_scale", [1.0, 3.0])
def test_every_token_is_filled_in_exactly_steps_steps_and_known_tokens_never_change(model, text, monkeypatch,
                                                                                   guidance_scale):
    forced = torch.randint(CODEBOOK, (3, N), generator=torch.Generator().manual_seed(7))
    # Row 0 keeps the top and bottom rows of the grid, row 1 all but one cell, row 2 nothing.
    keep = torch.zeros(3, N, dtype=torch.bool)
    keep[0, :4] = keep[0, -4:] = True
    keep[1] = True
    keep[1, 5] = False
    seen = record_inputs(model, monkeypatch)
    tokens = sample(model, text, forced=forced, keep=keep, steps=4, guidance_scale=guidance_scale)
    assert len(seen) == 4, "one model call per step, the guided halves in one batch"
    assert all(len(grid) == (6 if guidance_scale != 1 else 3) for grid in seen)
    grids = [grid[:3] for grid in seen] + [tokens]
    masked = [(grid == model.mask_id).sum(1).tolist() for grid in grids]
    assert masked == [[8, 1, 16], [7, 1, 14], [5, 1, 11], [3, 1, 6], [0, 0, 0]]
    assert tokens.min() >= 0 and tokens.max() < CODEBOOK
    for before, after in zip(grids, grids[1:]):
        known = before != model.mask_id
        assert torch.equal(after[known], before[known]), "a token once kept is never drawn again"
        assert torch.equal(after[keep], forced[keep])
    # The same schedule without forced tokens: 16 to fill in every row.
    seen.clear()
    sample(model, text, steps=4, guidance_scale=guidance_scale)
    assert [(grid[:3] == model.mask_id).sum(1).tolist() for grid in seen] == [[16] * 3, [14] * 3, [11] * 3, [6] * 3]


def reference_decoding(model, text, config, seed=0, null=None):
    """Written from the definition, with two separate model calls for guidance: draw every masked token from the
    guided logits, keep the most confident (log-probability plus annealed Gumbel noise) as the schedule allows."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.full((len(text[0]), N), model.mask_id)
    remaining = masked_after_steps([N] * len(tokens), config.steps)
    for step in range(config.steps):
        logits = model(*text, tokens)
        if config.guidance_scale != 1:
            uncond = model(*null, tokens)
            logits = uncond + config.scale_at(step) * (logits - uncond)
        log_probs = filter_logits(logits / config.temperature, config.top_k, config.top_p).log_softmax(-1)
        drawn = torch.multinomial(log_probs.exp().flatten(0, 1), 1, generator=generator).view(tokens.shape)
        unknown = tokens == model.mask_id
        tokens = torch.where(unknown, drawn, tokens)
        confidence = log_probs.gather(-1, tokens[..., None])[..., 0]
        noise = config.choice_temperature * (1 - (step + 1) / config.steps)
        if noise > 0:
            gumbel = -torch.empty_like(confidence).exponential_(generator=generator).log()
            confidence = confidence + noise * gumbel
        confidence[~unknown] = math.inf
        for row in range(len(tokens)):
            order = confidence[row].argsort(stable=True)
            tokens[row, order[: remaining[step, row]]] = model.mask_id
    return tokens


@pytest.mark.parametrize("schedule", ["constant", "linear"])
def test_guidance_scale_1_is_the_conditional_model(model, text, schedule):
    config = MaskedSamplingConfig(steps=5, guidance_scale=1.0, guidance_schedule=schedule, top_p=0.9)
    tokens = sample(model, text, **vars(config))
    assert torch.equal(tokens, reference_decoding(model, text, config))
    assert (tokens != model.mask_id).all()


@pytest.mark.parametrize("schedule", ["constant", "linear"])
def test_guided_decoding_follows_the_guided_logits(model, text, schedule):
    null = NULL_IDS.expand(3, -1), NULL_MASK.expand(3, -1)
    config = MaskedSamplingConfig(steps=6, guidance_scale=3.0, guidance_schedule=schedule, temperature=0.8)
    tokens = sample(model, text, **vars(config))
    assert torch.equal(tokens, reference_decoding(model, text, config, null=null))
    assert not torch.equal(tokens, sample(model, text, steps=6, temperature=0.8))
    # A linear schedule rises from near 1 to the full scale at the last step.
    expected = [3.0, 3.0] if schedule == "constant" else [1 + 2 / 6, 3.0]
    assert [config.scale_at(step) for step in (0, 5)] == pytest.approx(expected)


def test_the_same_seed_gives_the_same_tokens(model, text):
    first = sample(model, text, steps=8, guidance_scale=2.0, top_p=0.9)
    assert torch.equal(first, sample(model, text, steps=8, guidance_scale=2.0, top_p=0.9))
    assert not torch.equal(first, sample(model, text, seed=1, steps=8, guidance_scale=2.0, top_p=0.9))
    # Greedy draws without choice noise are the same for every seed.
    greedy = sample(model, text, steps=8, top_k=1, choice_temperature=0.0)
    assert torch.equal(greedy, sample(model, text, seed=5, steps=8, top_k=1, choice_temperature=0.0))


def test_a_hole_sees_the_kept_tokens_on_both_sides(model, text):
    """The first cell in raster order is redrawn; what it becomes depends on the kept cells after it (below it)."""
    forced = torch.randint(CODEBOOK, (3, N), generator=torch.Generator().manual_seed(2))
    keep = torch.ones(3, N, dtype=torch.bool)
    keep[:, 0] = False
    changed = forced.clone()
    changed[:, GRID[1]:] = (forced[:, GRID[1]:] + 1) % CODEBOOK  # only the rows below the hole differ
    first = sample(model, text, forced=forced, keep=keep, steps=1, top_k=1)
    second = sample(model, text, forced=changed, keep=keep, steps=1, top_k=1)
    logits = [model(*text, grid.masked_fill(~keep, model.mask_id))[:, 0] for grid in (forced, changed)]
    assert torch.equal(first[:, 0], logits[0].argmax(-1)) and torch.equal(second[:, 0], logits[1].argmax(-1))
    # A raster-order decoder's first token cannot depend on any kept token; here every row's depends on those below.
    assert ((logits[0] - logits[1]).abs().amax(-1) > 0.1).all()
    assert torch.equal(first[:, 1:], forced[:, 1:]) and torch.equal(second[:, 1:], changed[:, 1:])


def test_everything_kept_draws_nothing_and_the_model_mode_is_restored(text):
    torch.manual_seed(0)
    model = MaskedImageTransformer(20, CODEBOOK, token_grid=GRID, max_text_len=6, dim=32, depth=1, dropout=0.5)
    forced = torch.randint(CODEBOOK, (3, N), generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    everything = sample_masked_tokens(model, *text, NULL_IDS, NULL_MASK, MaskedSamplingConfig(), generator, forced,
                                      torch.ones(3, N, dtype=torch.bool))
    assert torch.equal(everything, forced) and torch.equal(generator.get_state(), state)
    expected = sample(model.eval(), text, steps=3)
    model.train()
    assert torch.equal(sample(model, text, steps=3), expected), "decoding runs without dropout"
    assert model.training


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(steps=0), "steps"),
        (dict(steps=2.5), "steps"),
        (dict(temperature=0.0), "top_k=1"),
        (dict(guidance_schedule="cosine"), "constant, linear"),
        (dict(choice_temperature=-1.0), "choice_temperature"),
        (dict(top_p=0.0), "top_p"),
        (dict(guidance_scale=math.inf), "guidance_scale"),
    ],
)
def test_bad_settings_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        MaskedSamplingConfig(**kw)


def test_decoding_under_bf16_autocast(model, text):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tokens = sample(model, text, steps=4, guidance_scale=2.0, top_k=4, top_p=0.9)
    assert tokens.shape == (3, N) and tokens.dtype == torch.long
    assert 0 <= tokens.min() and tokens.max() < CODEBOOK
