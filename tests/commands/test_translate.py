"""`python -m parti_exp.translate`: every input kind (a file, a folder, a mask box or file for inpainting, both
directions of a CycleGAN) and its errors (a folder with a non-image, an input of another size, a checkpoint that is
not a translator); and `python -m parti_exp.sample` with a translator's checkpoint."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra_compose import compose_export, compose_sample, compose_train, compose_translate, run_entry_point
from PIL import Image

from parti_exp.errors import BadDataError, ConfigError, MissingInputError
from parti_exp.inference.export import export_model
from parti_exp.metrics.folder_images import image_files
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.runtime.images import to_uint8
from parti_exp.sample import sample
from parti_exp.train import train
from parti_exp.translate import translate

pytestmark = pytest.mark.usefixtures("one_thread")

TWO_BATCHES = ["trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "callbacks.loss_curves=null"]
NO_GRID = ["callbacks.translation_grid=null"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    """Tiny checkpoints of super-resolution x4, inpainting and CycleGAN on the digits, and of a GAN."""
    runs = {
        "sr": ["model=pix2pix", "task=super_resolution", *NO_GRID],
        "inpaint": ["model=pix2pix", "task=inpaint", *NO_GRID],
        "cyclegan": ["model=cyclegan", "data=digit_styles", *NO_GRID],
        "gan": ["callbacks.sample_grid=null"],
    }
    paths = {}
    for name, overrides in runs.items():
        root = tmp_path_factory.mktemp(name)
        train(compose_train(root, *overrides, *TWO_BATCHES, "data.img_size=16"))
        paths[name] = str(root / "run" / "checkpoints" / "last.ckpt")
    return paths


def write(path, pixels: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def digits_at(size: int, n: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(n, size, size), dtype=np.uint8)


def loaded(ckpt: str):
    return module_from_checkpoint(read_checkpoint(ckpt))[0]


def expected_output(ckpt: str, inputs: torch.Tensor, direction: str = "a_to_b") -> np.ndarray:
    return to_uint8(loaded(ckpt).translate(inputs, direction))[:, 0].numpy()


def test_a_folder_of_low_resolution_inputs_is_translated_file_by_file(checkpoints, tmp_path):
    small = digits_at(4)
    for i, image in enumerate(small):
        write(tmp_path / "in" / f"digit {i}.png", image)
    (tmp_path / "in" / "notes.txt").write_text("not an image, and not one by its name: left alone")
    out = tmp_path / "out"
    paths = translate(compose_translate(tmp_path, f"ckpt_path={checkpoints['sr']}", f"image={tmp_path / 'in'}",
                                        f"out_dir={out}"), out)
    assert [p.name for p in paths] == ["digit_0.png", "digit_1.png", "digit_2.png"]
    inputs = torch.from_numpy(small).float()[:, None] / 127.5 - 1
    for path, expected in zip(paths, expected_output(checkpoints["sr"], inputs)):
        written = np.asarray(Image.open(path))
        assert written.shape == (16, 16)  # the output size, from 4 x 4 inputs
        assert np.array_equal(written, expected)
    # the sheet: one line of the three inputs (blown up to 16 px) over their outputs
    assert Image.open(out / "sheet.png").size == (3 * 18 + 2, 2 * 18 + 2)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == "super_resolution" and manifest["scale"] == 4 and manifest["input"] == [1, 4, 4]
    assert manifest["images"] == [p.name for p in paths]
    assert manifest["inputs"] == [str(tmp_path / "in" / f"digit {i}.png") for i in range(3)]
    # the outputs as evaluate reads the folder: the manifest's images, not the sheet
    assert image_files(out, "outputs_dir") == paths
    assert manifest["checkpoint"].endswith("last.ckpt") and len(manifest["checkpoint_sha256"]) == 64

    one = translate(compose_translate(tmp_path, f"ckpt_path={checkpoints['sr']}",
                                      f"image={tmp_path / 'in' / 'digit 1.png'}", f"out_dir={tmp_path / 'one'}"),
                    tmp_path / "one")
    assert np.array_equal(np.asarray(Image.open(one[0])), np.asarray(Image.open(paths[1])))

    # a run directory stands for its checkpoints/last.ckpt, and the manifest records that file
    run_dir = str(Path(checkpoints["sr"]).parents[1])
    by_run = translate(compose_translate(tmp_path, f"ckpt_path={run_dir}", f"image={tmp_path / 'in' / 'digit 1.png'}",
                                         f"out_dir={tmp_path / 'by_run'}"), tmp_path / "by_run")
    assert np.array_equal(np.asarray(Image.open(by_run[0])), np.asarray(Image.open(paths[1])))
    by_run_manifest = json.loads((tmp_path / "by_run" / "manifest.json").read_text())
    assert by_run_manifest["checkpoint"] == str(Path(checkpoints["sr"]).resolve())
    assert by_run_manifest["checkpoint_sha256"] == manifest["checkpoint_sha256"]


def test_inputs_of_another_size_or_broken_files_are_refused_by_name(checkpoints, tmp_path):
    write(tmp_path / "big" / "x.png", digits_at(16)[0])
    cfg = compose_translate(tmp_path, f"ckpt_path={checkpoints['sr']}", f"image={tmp_path / 'big'}")
    with pytest.raises(ConfigError, match=r"x.png is 16 x 16 px; the model takes 4 x 4 px inputs \(task="
                                          r"super_resolution: its 16 px images down-sampled 4 times\)"):
        translate(cfg, tmp_path / "out")
    write(tmp_path / "mixed" / "a.png", digits_at(4)[0])
    (tmp_path / "mixed" / "b.png").write_text("a text file named like an image")
    cfg = compose_translate(tmp_path, f"ckpt_path={checkpoints['sr']}", f"image={tmp_path / 'mixed'}")
    with pytest.raises(BadDataError, match=r"cannot decode image .*b.png"):
        translate(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # every file is read before anything is written
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingInputError, match="a folder without image files"):
        translate(compose_translate(tmp_path, f"ckpt_path={checkpoints['sr']}", f"image={tmp_path / 'empty'}"),
                  tmp_path / "out")
    with pytest.raises(ConfigError, match="mask=top is for task=inpaint"):
        translate(compose_translate(tmp_path, f"ckpt_path={checkpoints['sr']}", f"image={tmp_path / 'mixed' / 'a.png'}",
                                    "mask=top"), tmp_path / "out")


def test_inpainting_fills_the_masked_box_or_mask_file_and_keeps_the_rest(checkpoints, tmp_path):
    image = digits_at(16, 1)[0]
    write(tmp_path / "in" / "d.png", image)
    out = tmp_path / "box"
    translate(compose_translate(tmp_path, f"ckpt_path={checkpoints['inpaint']}", f"image={tmp_path / 'in'}",
                                "mask=[4,4,12,10]", f"out_dir={out}"), out)
    written = np.asarray(Image.open(out / "d.png"))
    hole = np.zeros((16, 16), dtype=bool)
    hole[4:12, 4:10] = True
    assert np.array_equal(written[~hole], image[~hole])  # the known pixels come back as they were
    assert not np.array_equal(written[hole], image[hole])
    assert json.loads((out / "manifest.json").read_text())["mask"] == [4, 4, 12, 10]

    mask = np.zeros((32, 32), dtype=np.uint8)  # a mask file at twice the size: white = missing
    mask[8:24, 8:20] = 255
    write(tmp_path / "mask.png", mask)
    out_file = tmp_path / "file"
    translate(compose_translate(tmp_path, f"ckpt_path={checkpoints['inpaint']}", f"image={tmp_path / 'in'}",
                                f"mask={tmp_path / 'mask.png'}", f"out_dir={out_file}"), out_file)
    assert np.array_equal(np.asarray(Image.open(out_file / "d.png")), written)  # the same hole, in input pixels
    with pytest.raises(ConfigError, match="this model fills holes"):
        translate(compose_translate(tmp_path, f"ckpt_path={checkpoints['inpaint']}", f"image={tmp_path / 'in'}"),
                  tmp_path / "none")


def test_cyclegan_translates_both_ways_and_pix2pix_one(checkpoints, tmp_path):
    image = digits_at(16, 1)[0]
    write(tmp_path / "in" / "d.png", image)
    inputs = torch.from_numpy(image).float()[None, None] / 127.5 - 1
    for direction in ("a_to_b", "b_to_a"):
        out = tmp_path / direction
        translate(compose_translate(tmp_path, f"ckpt_path={checkpoints['cyclegan']}", f"image={tmp_path / 'in'}",
                                    f"direction={direction}", f"out_dir={out}"), out)
        expected = expected_output(checkpoints["cyclegan"], inputs, direction)[0]
        assert np.array_equal(np.asarray(Image.open(out / "d.png")), expected)
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "a_to_b" / "d.png")),
                              np.asarray(Image.open(tmp_path / "b_to_a" / "d.png")))
    with pytest.raises(ConfigError, match="direction=b_to_a: Pix2PixModule translates a_to_b"):
        translate(compose_translate(tmp_path, f"ckpt_path={checkpoints['inpaint']}", f"image={tmp_path / 'in'}",
                                    "direction=b_to_a", "mask=top"), tmp_path / "x")


def test_a_gan_checkpoint_is_refused_in_one_message(checkpoints, tmp_path):
    write(tmp_path / "in" / "d.png", digits_at(16, 1)[0])
    result = run_entry_point("parti_exp.translate", f"ckpt_path={checkpoints['gan']}", f"image={tmp_path / 'in'}",
                             f"hydra.run.dir={tmp_path / 'hydra'}", check=False)
    assert result.returncode == 1
    refusal = "is a GANModule checkpoint (parti_exp.models.gan.module.GANModule), which translates nothing"
    assert refusal in result.stderr
    assert "Traceback" not in result.stderr


def test_sample_draws_translations_of_held_out_images(checkpoints, tmp_path):
    out = tmp_path / "samples"
    paths = sample(compose_sample(tmp_path, f"ckpt_path={checkpoints['sr']}", "n=10", "batch_size=4",
                                  f"out_dir={out}"), out)
    assert len(paths) == 10 and np.asarray(Image.open(paths[0])).shape == (16, 16)
    # grid.png: rows of 8 inputs, outputs and targets (the last line padded), as the epoch grid
    assert Image.open(out / "grid.png").size == (8 * 18 + 2, 6 * 18 + 2)
    assert json.loads((out / "manifest.json").read_text())["task"] == "super_resolution"
    with pytest.raises(ConfigError, match="image-to-image model, which translates held-out images"):
        sample(compose_sample(tmp_path, f"ckpt_path={checkpoints['sr']}", "mode=interpolate", "seeds=[1,2]"), out)


@pytest.mark.parametrize("name", ["sr", "cyclegan"])
def test_a_model_folder_translates_as_its_checkpoint(checkpoints, tmp_path, name):
    folder = export_model(compose_export(tmp_path, f"ckpt_path={checkpoints[name]}", f"out_dir={tmp_path / 'folder'}",
                                         "n=4"), torch.device("cpu"))
    size = 4 if name == "sr" else 16
    for i, image in enumerate(digits_at(size)):
        write(tmp_path / "in" / f"{i}.png", image)
    outputs = {}
    for source in (checkpoints[name], folder):
        out = tmp_path / Path(source).name
        paths = translate(compose_translate(tmp_path, f"ckpt_path={source}", f"image={tmp_path / 'in'}",
                                            f"out_dir={out}"), out)
        outputs[source] = [p.read_bytes() for p in paths]
    assert len(outputs[folder]) == 3 and outputs[folder] == outputs[checkpoints[name]]
