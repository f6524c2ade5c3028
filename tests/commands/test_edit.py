"""`python -m parti_exp.edit`: the files it writes, the pixels it keeps, and the errors it gives."""

from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoint_helpers import OLD_PARTI, OLD_TOKENIZER
from hydra_compose import compose_edit
from hydra_compose import run_entry_point as run
from PIL import Image
from torchvision.io import read_image

from parti_exp.edit import edit
from parti_exp.errors import BadCheckpointError, ConfigError, MissingInputError
from parti_exp.inference.prompts import reranking_scorer
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.runtime.images import to_uint8

PARTI = OLD_PARTI
VQGAN = OLD_TOKENIZER
SIZE = 16  # the fixture's image size: 4 x 4 tokens


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


def digit(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size))


def test_edit_from_the_command_line_writes_edits_and_a_sheet_per_image(tmp_path):
    write_png(tmp_path / "in" / "three.png", digit(SIZE))
    write_png(tmp_path / "in" / "big.png", digit(2 * SIZE, seed=1))  # resized to the model's 16 px
    mask = np.zeros((8, 8))
    mask[4:, :] = 255  # the bottom half, at half the canvas's size
    write_png(tmp_path / "mask.png", mask)
    result = run(
        "parti_exp.edit",
        f"ckpt_path={PARTI}",
        f"image={tmp_path / 'in'}",
        f"mask={tmp_path / 'mask.png'}",
        "prompt=a handwritten eight",
        "n=3",
        "n_candidates=2",
        "rerank=agreement",
        f"out_dir={tmp_path / 'out'}",
        f"paths.root_dir={tmp_path}",
    )
    assert "wrote 6 edits" in result.stdout
    edits = tmp_path / "out" / "edits"
    assert sorted(p.name for p in edits.iterdir()) == ["big", "three"]
    for folder in ("big", "three"):
        assert sorted(p.name for p in (edits / folder).iterdir()) == ["000.png", "001.png", "002.png", "sheet.png"]
        image = Image.open(edits / folder / "002.png")
        assert image.size == (SIZE, SIZE) and image.mode == "L"  # the model's size and the data's channels
        sheet = Image.open(edits / folder / "sheet.png")
        # One row of input, mask overlay and 3 edits (2 px apart) under a 14 px caption line.
        assert sheet.size == (5 * (SIZE + 2) + 2, 14 + SIZE + 4) and sheet.mode == "RGB"
        overlay = np.asarray(sheet)[14 + 2 : 14 + 2 + SIZE, SIZE + 4 : 2 * SIZE + 4]
        # The mask overlay is tinted red in the bottom half only.
        red = overlay[..., 0].astype(int) - overlay[..., 1]
        assert (red[SIZE // 2 :] > 60).all() and (red[: SIZE // 2] == 0).all()


def test_kept_pixels_are_the_reconstruction_and_an_empty_mask_changes_nothing(tmp_path):
    write_png(tmp_path / "small.png", digit(8))
    module, _ = module_from_checkpoint(read_checkpoint(PARTI))

    def reconstruction(canvas: np.ndarray) -> torch.Tensor:
        image = torch.from_numpy(canvas).float()[None, None] / 127.5 - 1
        return to_uint8(module.decode_codes(module.image_codes(image)))[0]

    # Outpainting: the 8 px image in the middle of a 16 px canvas, the border regenerated.
    cfg = compose_edit(tmp_path, f"ckpt_path={PARTI}", f"image={tmp_path / 'small.png'}", "mask=none",
                       "pad=[4,4,4,4]", "prompt=a handwritten zero", "n=4")
    paths = edit(cfg, tmp_path / "out")
    assert len(paths) == 4
    canvas = np.pad(digit(8), 4, mode="edge")  # pad_value=edge: the image's border, repeated
    expected = reconstruction(canvas)
    edits = torch.stack([read_image(str(path)) for path in paths])
    assert torch.equal(edits[:, :, 4:12, 4:12], expected[:, 4:12, 4:12].expand(4, -1, -1, -1))
    assert not torch.equal(edits, expected.expand(4, -1, -1, -1))  # the border was redrawn

    write_png(tmp_path / "whole.png", digit(SIZE))
    cfg = compose_edit(tmp_path, f"ckpt_path={PARTI}", f"image={tmp_path / 'whole.png'}", "mask=none",
                       "prompt=a handwritten zero", "n=2")
    for path in edit(cfg, tmp_path / "empty"):
        assert torch.equal(read_image(str(path)), reconstruction(digit(SIZE)))


def test_outpainting_keeps_a_light_pictures_pixels_whatever_they_are_padded_with(tmp_path):
    """The tokenizer encodes the whole canvas, so the padding's fill reaches the kept pixels' reconstruction; the
    default fill, the picture's own border, adds nothing that is not in the picture."""
    picture = np.full((8, 8), 230)
    picture[2:6, 2:6] = 120  # a grey square on a light ground
    write_png(tmp_path / "light.png", picture)

    def kept(*overrides: str) -> torch.Tensor:
        cfg = compose_edit(tmp_path, f"ckpt_path={PARTI}", f"image={tmp_path / 'light.png'}", "mask=none",
                           "pad=[4,4,4,4]", "prompt=a handwritten zero", "n=1", *overrides)
        (path,) = edit(cfg, tmp_path / "_".join(overrides or ["default"]))
        return read_image(str(path))[:, 4:12, 4:12].float()

    default, light, black = kept(), kept("pad_value=230"), kept("pad_value=0")
    assert torch.equal(default, light)
    # A black fill shows through: the leak the default avoids.
    assert (black - light).abs().mean() > 10
    with pytest.raises(ConfigError, match="pad_value=256 must be edge"):
        kept("pad_value=256")


@pytest.mark.parametrize(
    "overrides,error,match",
    [
        (["image={tmp}/missing.png"], MissingInputError, "does not exist"),
        (["mask=[0,0,20,8]"], ConfigError, "outside the 16 x 16 canvas"),
        (["mask=[8,0,8,8]"], ConfigError, "empty"),
        (["mask={tmp}/colour.png"], ConfigError, "colour image, not a mask"),
        (["ckpt_path={vqgan}"], ConfigError, "editing needs a text-to-image checkpoint"),
        (["ckpt_path={tmp}/three.png"], BadCheckpointError, "not a readable PyTorch checkpoint"),
        (["pad=[0,0,4,0]"], ConfigError, "pad it to a square"),
        (["rerank=best"], ConfigError, "rerank=best is not one of"),
        (["prompt= "], ConfigError, "prompt is empty"),
        (["scorer_ckpt={vqgan}"], ConfigError, "scorer_ckpt is for reranking"),
    ],
)
def test_bad_inputs_are_refused_with_a_message(tmp_path, overrides, error, match):
    write_png(tmp_path / "three.png", digit(SIZE))
    colour = np.zeros((SIZE, SIZE, 3))
    colour[..., 2] = 255
    write_png(tmp_path / "colour.png", colour)
    given = [o.format(tmp=tmp_path, vqgan=VQGAN) for o in overrides]
    cfg = compose_edit(tmp_path, f"ckpt_path={PARTI}", f"image={tmp_path / 'three.png'}", "prompt=a seven", *given)
    with pytest.raises(error, match=match):
        edit(cfg, tmp_path / "out")


def test_a_gan_checkpoint_is_refused_on_the_command_line_without_a_traceback(tmp_path):
    write_png(tmp_path / "three.png", digit(SIZE))
    result = run("parti_exp.edit", f"ckpt_path={VQGAN}", f"image={tmp_path / 'three.png'}", "prompt=a seven",
                 f"out_dir={tmp_path / 'out'}", f"paths.root_dir={tmp_path}", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "editing needs a text-to-image checkpoint" in result.stderr
    assert not (tmp_path / "out").exists()


def test_reranking_by_the_digit_classifier_keeps_the_candidate_it_reads_best(tmp_path):
    write_png(tmp_path / "three.png", digit(SIZE))
    common = [f"ckpt_path={PARTI}", f"image={tmp_path / 'three.png'}", "prompt=a handwritten eight", "mask=top",
              f"classifier_cache_dir={tmp_path / 'cache'}"]
    reranked = edit(compose_edit(tmp_path, *common, "n=2", "n_candidates=3", "rerank=scorer"), tmp_path / "best")
    # The same seed draws the same 6 candidates in one batch: the first three, then the next three.
    every = edit(compose_edit(tmp_path, *common, "n=6"), tmp_path / "every")
    cfg = compose_edit(tmp_path, *common, "n_candidates=3")
    module, train_cfg = module_from_checkpoint(read_checkpoint(PARTI))
    scorer = reranking_scorer(module, train_cfg, cfg)
    candidates = torch.stack([read_image(str(path)) for path in every]).float() / 127.5 - 1
    scores = scorer(candidates, "a handwritten eight").view(2, 3)
    assert len(set(scores.flatten().tolist())) == 6  # six different candidates: the choice means something
    best = scores.argmax(1)
    for i, path in enumerate(reranked):
        assert path.read_bytes() == every[3 * i + int(best[i])].read_bytes()
