"""Editing: forced-token sampling, masks carried to the token grid, reranking, and the edits' pixels."""

from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoint_helpers import OLD_PARTI
from PIL import Image

from parti_exp.errors import BadDataError, ConfigError, MissingInputError
from parti_exp.inference.edit_inputs import input_images, output_folders, to_model_input
from parti_exp.inference.edit_mask import cells_touched, pad_image, parse_pad, requested_mask
from parti_exp.inference.editing import choose, edit_image, kept_error
from parti_exp.models.text_to_image.sampling import SamplingConfig, filter_logits, sample_image_tokens
from parti_exp.nets.transformer import TextToImageTransformer
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint

# Tiny models: intra-op threads only add waiting (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")

GRID = (3, 3)
N = GRID[0] * GRID[1]
CODEBOOK = 13
NULL = torch.tensor([[2]]), torch.tensor([[True]])


@pytest.fixture
def transformer():
    torch.manual_seed(0)
    net = TextToImageTransformer(20, CODEBOOK, token_grid=GRID, max_text_len=6, dim=32, decoder_depth=2, heads=4)
    with torch.no_grad():
        net.head.weight.mul_(50)  # far from uniform, so the prefix matters
    return net.eval()


@pytest.fixture
def text():
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0], [11, 12, 13, 0]])
    return ids, ids != 0


@pytest.fixture(scope="module")
def module():
    module, _ = module_from_checkpoint(read_checkpoint(OLD_PARTI))
    return module


def forced_sample(model, text, forced, keep, seed=0, **config):
    return sample_image_tokens(model, *text, *NULL, SamplingConfig(**config), torch.Generator().manual_seed(seed),
                               forced, keep)


def reference_forced_sampling(model, text_ids, text_mask, forced, keep, seed=0, guidance_scale=1.0, top_p=None):
    """Written from the definition: whole-prefix logits; a kept position takes its forced token, the others a draw
    from the guided distribution given every token before them."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.empty(text_ids.shape[0], 0, dtype=torch.long)
    null = NULL[0].expand(len(text_ids), -1), NULL[1].expand(len(text_ids), -1)
    for t in range(N):
        if keep[:, t].all():
            tokens = torch.cat([tokens, forced[:, t : t + 1]], dim=1)
            continue
        logits = model.logits_uncached(text_ids, text_mask, tokens)
        if guidance_scale != 1:
            uncond = model.logits_uncached(*null, tokens)
            logits = uncond + guidance_scale * (logits - uncond)
        drawn = torch.multinomial(filter_logits(logits, None, top_p).softmax(-1), 1, generator=generator)[:, 0]
        tokens = torch.cat([tokens, torch.where(keep[:, t], forced[:, t], drawn)[:, None]], dim=1)
    return tokens


# Rows keep different cells: row 0 the first and last rows of the grid, row 1 all but the centre, row 2 nothing.
KEEP = torch.tensor([[1, 1, 1, 0, 0, 0, 1, 1, 1], [1, 1, 1, 1, 0, 1, 1, 1, 1], [0] * 9], dtype=torch.bool)


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("guidance_scale", [1.0, 3.0])
def test_forced_tokens_are_kept_and_the_others_sampled_given_them(transformer, text, use_cache, guidance_scale):
    forced = torch.randint(CODEBOOK, (3, N), generator=torch.Generator().manual_seed(7))
    tokens = forced_sample(transformer, text, forced, KEEP, guidance_scale=guidance_scale, use_cache=use_cache)
    assert torch.equal(tokens[KEEP], forced[KEEP])
    expected = reference_forced_sampling(transformer, *text, forced, KEEP, guidance_scale=guidance_scale)
    assert torch.equal(tokens, expected)
    # The free positions are drawn: another seed changes some of them, never a kept one.
    other = forced_sample(transformer, text, forced, KEEP, seed=1, guidance_scale=guidance_scale, use_cache=use_cache)
    assert torch.equal(other[KEEP], forced[KEEP]) and not torch.equal(other[~KEEP], tokens[~KEEP])


def test_a_sampled_token_sees_the_kept_tokens_before_it(transformer, text):
    keep = torch.zeros(3, N, dtype=torch.bool)
    keep[:, : N - 1] = True  # only the last token is sampled, greedily: the argmax given the forced prefix
    forced = torch.randint(CODEBOOK, (3, N), generator=torch.Generator().manual_seed(3))
    tokens = forced_sample(transformer, text, forced, keep, top_k=1)
    assert torch.equal(tokens[:, -1], transformer.logits_uncached(*text, forced[:, :-1]).argmax(-1))


def test_nothing_kept_is_plain_sampling_and_everything_kept_draws_nothing(transformer, text):
    forced = torch.randint(CODEBOOK, (3, N), generator=torch.Generator().manual_seed(1))
    plain = sample_image_tokens(transformer, *text, *NULL, SamplingConfig(), torch.Generator().manual_seed(0))
    assert torch.equal(forced_sample(transformer, text, forced, torch.zeros(3, N, dtype=torch.bool)), plain)
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    everything = sample_image_tokens(transformer, *text, *NULL, SamplingConfig(), generator, forced,
                                     torch.ones(3, N, dtype=torch.bool))
    assert torch.equal(everything, forced) and torch.equal(generator.get_state(), state)


def test_forced_and_keep_go_together(transformer, text):
    forced = torch.zeros(3, N, dtype=torch.long)
    with pytest.raises(ValueError, match="together"):
        forced_sample(transformer, text, forced, None)
    with pytest.raises(ValueError, match="3 x 9"):
        forced_sample(transformer, text, forced[:, :4], torch.ones(3, 4, dtype=torch.bool))


def test_halves_map_to_their_token_rows_and_columns():
    grid = (4, 4)
    expected_rows = {"top": [0, 1], "bottom": [2, 3]}
    for half, rows in expected_rows.items():
        cells = cells_touched(requested_mask(half, 16, 16), grid)
        assert cells.any(dim=1).nonzero().flatten().tolist() == rows and cells[rows].all()
    assert cells_touched(requested_mask("left", 16, 16), grid).nonzero()[:, 1].unique().tolist() == [0, 1]
    assert cells_touched(requested_mask("right", 16, 16), grid).nonzero()[:, 1].unique().tolist() == [2, 3]
    # An odd side: the middle row stays with the kept half.
    assert requested_mask("bottom", 5, 4).nonzero()[:, 0].unique().tolist() == [3, 4]
    assert not requested_mask("none", 16, 16).any()


def test_a_box_touches_every_cell_it_overlaps():
    # Rows 5..8 overlap token rows 1 (4..7) and 2 (8..11); columns 0..3 only token column 0.
    for spec in ([5, 0, 9, 4], "box=[5,0,9,4]", "box=[5, 0, 9, 4]"):
        mask = requested_mask(spec, 16, 16)
        assert mask.sum() == 16 and mask[5:9, 0:4].all()
        assert cells_touched(mask, (4, 4)).nonzero().tolist() == [[1, 0], [2, 0]]
    # One pixel touches one cell; the box's last row and column are exclusive.
    assert cells_touched(requested_mask([4, 4, 5, 5], 16, 16), (4, 4)).nonzero().tolist() == [[1, 1]]
    assert cells_touched(requested_mask([0, 0, 4, 4], 16, 16), (4, 4)).nonzero().tolist() == [[0, 0]]


def test_any_overlap_for_sizes_that_do_not_divide_and_for_finer_grids():
    mask = torch.zeros(10, 10, dtype=torch.bool)
    mask[5, 5] = True  # [5, 6) of 10 is [2.0, 2.4) in a 4-cell grid: cell 2 only
    assert cells_touched(mask, (4, 4)).nonzero().tolist() == [[2, 2]]
    mask = torch.zeros(10, 10, dtype=torch.bool)
    mask[2, 7] = True  # [2, 3) -> [0.8, 1.2): cells 0 and 1; [7, 8) -> [2.8, 3.2): cells 2 and 3
    assert cells_touched(mask, (4, 4)).nonzero().tolist() == [[0, 2], [0, 3], [1, 2], [1, 3]]
    coarse = torch.zeros(3, 3, dtype=torch.bool)
    coarse[1, 1] = True  # [1, 2) of 3 is [1.33, 2.67) of 4: cells 1 and 2
    assert cells_touched(coarse, (4, 4)).nonzero().tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]


def write_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array.astype(np.uint8)).save(path, format="PNG")
    return path


def test_a_mask_image_of_another_size_maps_by_overlap(tmp_path):
    array = np.zeros((40, 40), dtype=np.uint8)
    array[:9, :9] = 255  # 40 px -> 16: [0, 3.6) px, inside token cell (0, 0)
    array[30:, 39] = 250  # the last column, rows 30..39: token cells (3, 3) only
    mask = requested_mask(str(write_png(tmp_path / "m.png", array)), 16, 16)
    assert mask.shape == (40, 40)
    assert cells_touched(mask, (4, 4)).nonzero().tolist() == [[0, 0], [3, 3]]
    # Pixel row 10 of 40 covers canvas rows [4.0, 4.4): token row 1.
    array[10, 0] = 255
    mask = requested_mask(str(write_png(tmp_path / "m2.png", array)), 16, 16)
    assert cells_touched(mask, (4, 4)).nonzero().tolist() == [[0, 0], [1, 0], [3, 3]]
    # An RGB file of greys reads the same.
    rgb = np.repeat(array[..., None], 3, axis=2)
    assert torch.equal(requested_mask(str(write_png(tmp_path / "rgb.png", rgb)), 16, 16), mask)


@pytest.mark.parametrize(
    "spec,error,match",
    [
        ([0, 0, 20, 8], ConfigError, "outside the 16 x 16 canvas"),
        ([-1, 0, 4, 4], ConfigError, "outside"),
        ([4, 4, 4, 8], ConfigError, "empty"),
        ([8, 4, 2, 8], ConfigError, "empty"),
        ([0, 0, 4], ConfigError, "four whole pixel numbers"),
        ("box=[0,0,a,4]", ConfigError, "four whole pixel numbers"),
        ("middle", MissingInputError, "neither top, bottom, left, right, none"),
    ],
)
def test_bad_masks_are_refused_with_a_message(spec, error, match):
    with pytest.raises(error, match=match):
        requested_mask(spec, 16, 16)


def test_mask_images_of_the_wrong_kind_are_refused(tmp_path):
    colour = np.zeros((16, 16, 3), dtype=np.uint8)
    colour[..., 0] = 255
    with pytest.raises(ConfigError, match="colour image, not a mask"):
        requested_mask(str(write_png(tmp_path / "red.png", colour)), 16, 16)
    photo = np.tile(np.linspace(0, 255, 16), (16, 1))
    with pytest.raises(ConfigError, match="grey, not a mask"):
        requested_mask(str(write_png(tmp_path / "photo.png", photo)), 16, 16)
    with pytest.raises(ConfigError, match="proportions"):
        requested_mask(str(write_png(tmp_path / "wide.png", np.zeros((16, 32)))), 16, 16)
    (tmp_path / "fake.png").write_bytes(b"not a png")
    with pytest.raises(BadDataError, match="fake.png"):
        requested_mask(str(tmp_path / "fake.png"), 16, 16)


def test_pad_grows_the_canvas_and_masks_the_new_strips():
    image = torch.full((1, 8, 6), 200, dtype=torch.uint8)
    canvas, padded = pad_image(image, parse_pad([1, 2, 3, 4]), fill=7)
    assert canvas.shape == (1, 12, 12) and padded.shape == (12, 12)
    assert torch.equal(canvas[:, 1:9, 2:8], image) and (canvas[:, ~padded] == 200).all()
    assert (canvas[:, padded] == 7).all() and padded.sum() == 144 - 48
    assert parse_pad(None) == (0, 0, 0, 0)
    for bad in ([1, 2, 3], [0, 0, -1, 0], [0.5, 0, 0, 0]):
        with pytest.raises(ConfigError, match="pad="):
            parse_pad(bad)
    with pytest.raises(ConfigError, match="square"):
        to_model_input(canvas[:, :10], 16, "image x.png")


def test_input_images_and_their_folders(tmp_path):
    with pytest.raises(MissingInputError, match="does not exist"):
        input_images(tmp_path / "nope.png")
    with pytest.raises(MissingInputError, match="without image files"):
        input_images(tmp_path)
    names = ["a.png", "a.jpg", "..png", "b c.png"]
    for name in names:
        write_png(tmp_path / name, np.zeros((4, 4)))
    found = input_images(tmp_path)
    assert [p.name for p in found] == sorted(names)
    folders = output_folders(found)
    assert len(set(folders)) == 4 and all("/" not in f and f.strip(".") for f in folders)
    assert dict(zip([p.name for p in found], folders))["b c.png"] == "b_c"


def test_kept_error_and_the_ranking_rule():
    images = torch.zeros(2, 1, 2, 2)
    images[1, 0, 0, 0] = 1.0  # kept pixel off by 1: squared error 1 over 3 kept pixels
    images[1, 0, 1, 1] = 5.0  # masked pixel: ignored
    mask = torch.tensor([[False, False], [False, True]])
    torch.testing.assert_close(kept_error(images, torch.zeros(1, 1, 2, 2), mask), torch.tensor([0.0, 1 / 3]))
    assert kept_error(images, torch.zeros(1, 1, 2, 2), torch.ones(2, 2, dtype=torch.bool)).tolist() == [0.0, 0.0]
    # scorer ranks [0, 1, 2], agreement ranks [2, 0, 1]: sums [2, 1, 3] -> candidate 1.
    scores, errors = torch.tensor([[0.9, 0.8, 0.1]]), torch.tensor([[0.9, 0.1, 0.5]])
    assert choose(scores, errors, "both").tolist() == [1]
    assert choose(scores, errors, "scorer").tolist() == [0]
    assert choose(None, errors, "agreement").tolist() == [1]
    # A tie in the rank sum goes to the better scorer rank: ranks [0, 2, 1] and [2, 0, 1] all sum to 2.
    assert choose(torch.tensor([[0.9, 0.1, 0.5]]), torch.tensor([[0.3, 0.1, 0.2]]), "both").tolist() == [0]
    with pytest.raises(ValueError, match="rerank must be one of"):
        choose(scores, errors, "best")


def record_codes(module, monkeypatch) -> list:
    decoded = []
    decode = type(module).decode_codes

    def recording(self, tokens):
        decoded.append(tokens.clone())
        return decode(self, tokens)

    monkeypatch.setattr(type(module), "decode_codes", recording)
    return decoded


def digit_image(module) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(1, 1, 16, 16) * 2 - 1


def test_edits_keep_the_codes_and_pixels_outside_the_mask(module, monkeypatch):
    image = digit_image(module)
    mask = requested_mask("bottom", 16, 16)
    decoded = record_codes(module, monkeypatch)
    edits = edit_image(module, image, mask, "a handwritten eight", n=6, generator=torch.Generator().manual_seed(0))
    codes = module.image_codes(image)
    reconstruction, candidates = decoded  # the reconstruction's codes, then the candidates'
    assert torch.equal(reconstruction, codes)
    keep = torch.arange(16) < 8  # the top two token rows of the 4 x 4 grid
    assert torch.equal(edits.keep, keep)
    assert torch.equal(candidates[:, keep], codes.expand(6, -1)[:, keep])
    assert not (candidates[:, ~keep] == codes[:, ~keep]).all(dim=1).all()  # sampled, not copied
    assert edits.images.shape == (6, 1, 16, 16)
    assert torch.equal(edits.images[:, :, ~mask], edits.reconstruction.expand(6, -1, -1, -1)[:, :, ~mask])
    assert not torch.equal(edits.images[:, :, mask], edits.reconstruction.expand(6, -1, -1, -1)[:, :, mask])
    torch.testing.assert_close(edits.reconstruction, module.decode_codes(codes))


def test_an_empty_mask_returns_the_reconstruction_unchanged(module):
    image = digit_image(module)
    edits = edit_image(module, image, torch.zeros(16, 16, dtype=torch.bool), "the digit 2", n=3, n_candidates=2,
                       rerank="agreement", generator=torch.Generator().manual_seed(0))
    assert edits.keep.all()
    assert torch.equal(edits.images, edits.reconstruction.expand(3, -1, -1, -1))
    assert torch.equal(edits.reconstruction, module.decode_codes(module.image_codes(image)))


def test_reranking_keeps_the_candidate_the_rule_prefers(module):
    image = digit_image(module)
    mask = requested_mask("right", 16, 16)
    n, k = 2, 4

    def brightness(images, caption):
        return images.mean(dim=(1, 2, 3))

    def run(n, k, rerank, scorer=brightness):
        return edit_image(module, image, mask, "a handwritten one", n, k, scorer, rerank, SamplingConfig(),
                          torch.Generator().manual_seed(5))

    # The same generator draws the same n x k candidates in one batch, whatever the grouping.
    every = run(n * k, 1, "both", scorer=None)
    groups = every.images.view(n, k, 1, 16, 16)
    by_scorer = run(n, k, "scorer")
    torch.testing.assert_close(by_scorer.images, groups[torch.arange(n), brightness(every.images, "").view(n, k)
                                                       .argmax(1)])
    by_agreement = run(n, k, "agreement")
    best = every.kept_error.view(n, k).argmin(1)
    torch.testing.assert_close(by_agreement.images, groups[torch.arange(n), best])
    torch.testing.assert_close(by_agreement.kept_error, every.kept_error.view(n, k).min(1).values)
    both = run(n, k, "both")
    expected = choose(brightness(every.images, "").view(n, k), every.kept_error.view(n, k), "both")
    torch.testing.assert_close(both.images, groups[torch.arange(n), expected])
