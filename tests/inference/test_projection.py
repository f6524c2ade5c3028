"""The GAN projector (``python -m parti_exp.project``) and the sample command on its latents, on tiny checkpoints
trained for one batch: the distance falls, the saved latent regenerates the projected PNG byte for byte, paths
between two projections start and end at them, and bad inputs are refused."""

import json

import numpy as np
import pytest
import torch
from checkpoint_helpers import OLD_VAE
from hydra_compose import compose_project, compose_sample, one_batch_checkpoints
from PIL import Image
from sklearn.datasets import load_digits

from parti_exp.errors import ConfigError, MissingInputError
from parti_exp.inference.latent_file import load_latent
from parti_exp.inference.projection import ProjectionSettings, learning_rate, noise_regularization
from parti_exp.project import project
from parti_exp.sample import sample


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """model name -> checkpoints/last.ckpt of a one-batch run."""
    return one_batch_checkpoints(tmp_path_factory, ("dcgan", "stylegan_lite", "cgan_pd"))


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    """Two real 8 x 8 digits (a 0 and a 1 of sklearn's set) as PNG files: the projector resizes them to 16 px."""
    root = tmp_path_factory.mktemp("targets")
    digits = load_digits()
    paths = []
    for index in (0, 1):
        pixels = (digits.images[index] * (255 / 16)).round().astype(np.uint8)
        Image.fromarray(pixels).save(root / f"digit{index}.png")
        paths.append(root / f"digit{index}.png")
    return paths


def run_project(tmp_path, ckpt, image, out, *overrides):
    cfg = compose_project(tmp_path, f"ckpt_path={ckpt}", f"image={image}", "device=cpu", "steps=40", *overrides)
    return project(cfg, tmp_path / out)


def run_sample(tmp_path, ckpt, out, *overrides):
    return sample(compose_sample(tmp_path, f"ckpt_path={ckpt}", "device=cpu", *overrides), tmp_path / out)


@pytest.mark.parametrize(("model", "space"), [("stylegan_lite", "w"), ("stylegan_lite", "w+"), ("stylegan_lite", "z")])
def test_projection_reduces_its_distance_and_the_latent_regenerates_the_png(checkpoints, targets, tmp_path, model,
                                                                            space):
    ckpt, target = checkpoints[model], targets[0]
    [png] = run_project(tmp_path, ckpt, target, "proj", f"space={space}")
    manifest = json.loads((tmp_path / "proj" / "manifest.json").read_text())
    [entry] = manifest["projections"]
    assert entry["space"] == space and entry["latent"] == "digit0.npz"
    # z starts from the best of 256 prior draws, w from the mean w: z has less left to gain
    assert entry["distance_end"] < {"w": 0.5, "w+": 0.5, "z": 0.95}[space] * entry["distance_start"]
    latent = load_latent(tmp_path / "proj" / "digit0.npz")
    assert latent.checkpoint_sha256 == manifest["checkpoint_sha256"]
    assert len(latent.noise) == (0 if space == "z" else 5)  # one map per 3x3 conv at 16 px
    assert Image.open(tmp_path / "proj" / "digit0.gif").n_frames > 2
    [again] = run_sample(tmp_path, ckpt, "again", f"latents=[{tmp_path / 'proj' / 'digit0.npz'}]")
    assert again.read_bytes() == png.read_bytes()


def test_interpolation_between_projections_starts_and_ends_at_them(checkpoints, targets, tmp_path):
    ckpt = checkpoints["stylegan_lite"]
    a, b = targets
    [pa] = run_project(tmp_path, ckpt, a, "a", "space=w+")
    [pb] = run_project(tmp_path, ckpt, b, "b", "space=w")  # a W latent and a W+ one: the path is in W+
    latents = f"latents=[{tmp_path / 'a' / 'digit0.npz'},{tmp_path / 'b' / 'digit1.npz'}]"
    frames = run_sample(tmp_path, ckpt, "walk", "mode=interpolate", latents, "steps=5")
    assert len(frames) == 5
    assert frames[0].read_bytes() == pa.read_bytes() and frames[-1].read_bytes() == pb.read_bytes()
    assert len({f.read_bytes() for f in frames}) == 5
    # truncation= works on them: ψ = 1 is the projection, ψ < 1 moves it toward the mean image
    same = run_sample(tmp_path, ckpt, "one", latents, "truncation=1.0")
    half = run_sample(tmp_path, ckpt, "half", latents, "truncation=0.5")
    assert same[0].read_bytes() == pa.read_bytes() and half[0].read_bytes() != pa.read_bytes()


def test_conditional_gan_searches_the_class_or_takes_the_one_given(checkpoints, targets, tmp_path):
    ckpt, target = checkpoints["cgan_pd"], targets[0]
    run_project(tmp_path, ckpt, target, "given", "label=3")
    assert load_latent(tmp_path / "given" / "digit0.npz").label == 3
    [png] = run_project(tmp_path, ckpt, target, "search")
    latent = load_latent(tmp_path / "search" / "digit0.npz")
    assert latent.label in range(10)
    [again] = run_sample(tmp_path, ckpt, "again", f"latents=[{tmp_path / 'search' / 'digit0.npz'}]")
    assert again.read_bytes() == png.read_bytes()
    with pytest.raises(ConfigError, match="out of range"):
        run_project(tmp_path, ckpt, target, "bad", "label=10")


def test_interpolation_between_projections_of_two_classes_mixes_the_class_embeddings(checkpoints, targets, tmp_path):
    ckpt = checkpoints["cgan_pd"]
    [p3] = run_project(tmp_path, ckpt, targets[0], "three", "label=3", "steps=10")
    [p7] = run_project(tmp_path, ckpt, targets[1], "seven", "label=7", "steps=10")
    latents = f"latents=[{tmp_path / 'three' / 'digit0.npz'},{tmp_path / 'seven' / 'digit1.npz'}]"
    frames = run_sample(tmp_path, ckpt, "walk", "mode=interpolate", latents, "steps=4")
    assert frames[0].read_bytes() == p3.read_bytes() and frames[-1].read_bytes() == p7.read_bytes()
    with pytest.raises(ConfigError, match="drop seeds= and classes="):
        run_sample(tmp_path, ckpt, "x", "mode=interpolate", latents, "classes=[1]")


@pytest.mark.parametrize("distance", ["ssim", "discriminator", "classifier"])
def test_every_distance_falls(checkpoints, targets, tmp_path, distance):
    run_project(tmp_path, checkpoints["stylegan_lite"], targets[0], "p", f"distance={distance}",
                "steps=20", f"classifier_cache_dir={tmp_path / 'cache'}")
    [entry] = json.loads((tmp_path / "p" / "manifest.json").read_text())["projections"]
    assert entry["distance_end"] < entry["distance_start"]


def test_images_of_another_size_are_resized_and_channels_converted(checkpoints, tmp_path):
    colour = np.zeros((40, 40, 3), dtype=np.uint8)
    colour[8:32, 16:24] = (250, 200, 120)  # a bar, in colour, at 40 px
    Image.fromarray(colour).save(tmp_path / "bar.png")
    [png] = run_project(tmp_path, checkpoints["dcgan"], tmp_path / "bar.png", "out", "steps=5")
    assert Image.open(png).size == (16, 16) and Image.open(png).mode == "L"
    assert png.name == "bar.png"
    [again] = run_sample(tmp_path, checkpoints["dcgan"], "again", f"latents=[{tmp_path / 'out' / 'bar.npz'}]")
    assert again.read_bytes() == png.read_bytes()  # a z latent regenerates its image too


def test_bad_inputs_are_refused_with_a_message(checkpoints, targets, tmp_path):
    ckpt, target = checkpoints["stylegan_lite"], targets[0]
    Image.fromarray(np.zeros((16, 20), dtype=np.uint8)).save(tmp_path / "wide.png")
    with pytest.raises(ConfigError, match="square"):
        run_project(tmp_path, ckpt, tmp_path / "wide.png", "o")
    with pytest.raises(MissingInputError, match="does not exist"):
        run_project(tmp_path, ckpt, tmp_path / "nowhere.png", "o")
    with pytest.raises(ConfigError, match="family .vae."):
        run_project(tmp_path, OLD_VAE, target, "o")
    with pytest.raises(ConfigError, match="no w space"):
        run_project(tmp_path, checkpoints["dcgan"], target, "o", "space=w")
    with pytest.raises(ConfigError, match="unconditional"):
        run_project(tmp_path, ckpt, target, "o", "label=1")
    # a latent means an image only under its own checkpoint
    run_project(tmp_path, ckpt, target, "mine", "steps=2")
    with pytest.raises(ConfigError, match="another checkpoint"):
        run_sample(tmp_path, checkpoints["dcgan"], "x", f"latents=[{tmp_path / 'mine' / 'digit0.npz'}]")
    with pytest.raises(MissingInputError, match="does not exist"):
        run_sample(tmp_path, ckpt, "x", f"latents=[{tmp_path / 'none.npz'}]")


def test_noise_regularizer_tells_white_noise_from_structured_maps():
    white = [torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))]
    smooth = [torch.ones(1, 1, 16, 16)]
    assert noise_regularization(white).item() < 0.01 < noise_regularization(smooth).item()


def test_learning_rate_ramps_up_then_down():
    settings = ProjectionSettings(lr=0.1)
    assert learning_rate(settings, 0.0) == 0.0
    assert learning_rate(settings, 0.5) == pytest.approx(0.1)
    assert learning_rate(settings, 0.99) < 0.01


def test_a_model_folder_projects_as_its_checkpoint(checkpoints, targets, tmp_path):
    """``python -m parti_exp.export``'s folder in place of the checkpoint: the same projection, byte for byte, and its
    latents regenerate under the folder."""
    from hydra_compose import compose_export

    from parti_exp.inference.export import export_model

    ckpt = checkpoints["stylegan_lite"]
    folder = export_model(compose_export(tmp_path, f"ckpt_path={ckpt}", f"out_dir={tmp_path / 'folder'}", "n=4"),
                          torch.device("cpu"))
    [from_ckpt] = run_project(tmp_path, ckpt, targets[0], "from_ckpt", "space=w+")
    [from_folder] = run_project(tmp_path, folder, targets[0], "from_folder", "space=w+")
    assert from_folder.read_bytes() == from_ckpt.read_bytes()
    [again] = run_sample(tmp_path, folder, "again", f"latents=[{tmp_path / 'from_folder' / 'digit0.npz'}]")
    assert again.read_bytes() == from_folder.read_bytes()
