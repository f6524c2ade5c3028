"""The GAN sampling tools of ``python -m parti_exp.sample``: truncation, interpolation, per-class sheets and the
manifest, on tiny checkpoints trained for one batch."""

import json

import pytest
import torch
from hydra_compose import TINY_GAN, compose_sample, compose_train, one_batch_checkpoints, record_generator_labels
from PIL import Image

from parti_exp.errors import ConfigError
from parti_exp.inference.latent import draw_latents, slerp
from parti_exp.models.gan.truncation import redraw_beyond, truncation_threshold
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.sample import sample
from parti_exp.train import train


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """model name -> checkpoints/last.ckpt of a one-batch run."""
    return one_batch_checkpoints(tmp_path_factory, ("dcgan", "stylegan_lite", "cgan_pd"))


def run(tmp_path, ckpt, out, *overrides):
    return sample(compose_sample(tmp_path, f"ckpt_path={ckpt}", "device=cpu", *overrides), tmp_path / out)


def read_bytes(paths):
    return [p.read_bytes() for p in paths]


@pytest.mark.parametrize("model", ["dcgan", "stylegan_lite"])
def test_truncation_one_is_bit_identical_to_none(checkpoints, tmp_path, model):
    plain = run(tmp_path, checkpoints[model], "plain", "n=6")
    psi_one = run(tmp_path, checkpoints[model], "one", "n=6", "truncation=1.0")
    truncated = run(tmp_path, checkpoints[model], "half", "n=6", "truncation=0.5")
    assert read_bytes(plain) == read_bytes(psi_one)
    assert read_bytes(plain) != read_bytes(truncated)


def test_bigan_rule_redraws_only_the_entries_beyond_the_threshold():
    z = torch.randn(64, 32, generator=torch.Generator().manual_seed(3))
    threshold = truncation_threshold(0.5)
    assert threshold == pytest.approx(0.6745, abs=1e-4)  # the normal's quartile: half the mass within it
    out = redraw_beyond(z, threshold, torch.Generator().manual_seed(4))
    inside = z.abs() <= threshold
    assert out.abs().max() <= threshold
    assert torch.equal(out[inside], z[inside])
    assert (out[~inside] != z[~inside]).all()
    assert (out[~inside].abs() < threshold).all()  # redrawn, not clamped onto the threshold
    assert truncation_threshold(1.0) == float("inf")


def test_dcgan_truncated_latents_stay_within_the_threshold(checkpoints):
    module, _ = module_from_checkpoint(read_checkpoint(checkpoints["dcgan"]))
    plain = draw_latents(module, 32, 5, 1.0)
    truncated = draw_latents(module, 32, 5, 0.3)
    threshold = truncation_threshold(0.3)
    assert truncated.abs().max() <= threshold
    inside = plain.abs() <= threshold
    assert torch.equal(truncated[inside], plain[inside])


def test_stylegan_truncation_toward_zero_collapses_onto_the_mean_image(checkpoints):
    module, _ = module_from_checkpoint(read_checkpoint(checkpoints["stylegan_lite"]))
    z = torch.randn(8, module.latent_dim, generator=torch.Generator().manual_seed(1))
    rng = torch.Generator()
    mean_image = module.generate_from_w(module.mean_w()[None])
    spread = {}
    for psi in (1.0, 0.5, 1e-6):
        images = module.generate_truncated(z, None, psi, rng)
        spread[psi] = (images - mean_image).abs().max().item()
    assert spread[1e-6] < 1e-4
    assert spread[1e-6] < spread[0.5] < spread[1.0]
    # The mean is of 10k latents from a fixed seed: the same every time it is computed.
    assert torch.equal(module.mean_w(), module.mean_w())


def test_slerp_ends_and_norm():
    a, b = torch.randn(16), torch.randn(16)
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    unit_a, unit_b = a / a.norm(), b / b.norm()
    assert slerp(unit_a, unit_b, 0.3).norm().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("model", ["dcgan", "stylegan_lite"])
def test_interpolation_frames_strip_gif_and_endpoints(checkpoints, tmp_path, model):
    ckpt = checkpoints[model]
    frames = run(tmp_path, ckpt, "walk", "mode=interpolate", "seeds=[1,2,3]", "steps=5", "truncation=0.8")
    assert len(frames) == 2 * (5 - 1) + 1
    for seed, index in ((1, 0), (2, 4), (3, 8)):
        own = run(tmp_path, ckpt, f"seed{seed}", "n=1", f"seed={seed}", "truncation=0.8")
        assert frames[index].read_bytes() == own[0].read_bytes()
    gif = Image.open(tmp_path / "walk" / "interpolation.gif")
    assert gif.n_frames == 9
    strip = Image.open(tmp_path / "walk" / "strip.png")
    assert strip.size == (9 * 16 + 10 * 2, 16 + 2 * 2)


def distinct_classes(ckpt, out):
    """A copy of a conditional checkpoint whose class embeddings differ visibly (one training batch barely moves
    them from their shared initial values)."""
    checkpoint = torch.load(ckpt, weights_only=True)
    rng = torch.Generator().manual_seed(0)
    for key, value in checkpoint["state_dict"].items():
        if key.endswith((".gain.weight", ".bias.weight")):  # the conditional batch norms' embeddings
            value.copy_(torch.randn(value.shape, generator=rng))
    torch.save(checkpoint, out)
    return out


def test_conditional_interpolation_fixed_class_and_between_classes(checkpoints, tmp_path):
    ckpt = distinct_classes(checkpoints["cgan_pd"], tmp_path / "distinct.ckpt")
    fixed = run(tmp_path, ckpt, "fixed", "mode=interpolate", "seeds=[1,2]", "steps=4", "classes=[7]")
    own = run(tmp_path, ckpt, "own", "n=1", "seed=2", "classes=[7]")
    assert fixed[-1].read_bytes() == own[0].read_bytes()
    moving = run(tmp_path, ckpt, "moving", "mode=interpolate", "seeds=[1,1]", "steps=4", "classes=[3,7]")
    start = run(tmp_path, ckpt, "start", "n=1", "seed=1", "classes=[3]")
    end = run(tmp_path, ckpt, "end", "n=1", "seed=1", "classes=[7]")
    assert moving[0].read_bytes() == start[0].read_bytes()
    assert moving[-1].read_bytes() == end[0].read_bytes()
    assert len({p.read_bytes() for p in moving}) == 4  # the middle frames are mixes, neither class


def test_class_sheets_rows_are_the_requested_classes(checkpoints, tmp_path, monkeypatch):
    seen = record_generator_labels(monkeypatch)
    paths = run(tmp_path, checkpoints["cgan_pd"], "sheet", "mode=classes", "n_per_class=3", "classes=[4,1]")
    assert [row.tolist() for row in seen] == [[4, 4, 4], [1, 1, 1]]
    assert [p.parent.name for p in paths] == ["class_004"] * 3 + ["class_001"] * 3
    grid = Image.open(tmp_path / "sheet" / "grid.png")
    assert grid.size == (3 * 16 + 4 * 2, 2 * (14 + 16 + 2 * 2))  # two captioned rows


def test_manifest_round_trip_reproduces_the_images(checkpoints, tmp_path):
    ckpt = checkpoints["cgan_pd"]
    first = run(tmp_path, ckpt, "a", "mode=classes", "n_per_class=2", "classes=[0,5]", "seed=9", "truncation=0.6")
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["g_step"] == read_checkpoint(ckpt)["gan_steps"]["g_step"]
    assert manifest["seeds"] == [9] and manifest["mode"] == "classes" and manifest["checkpoint"] == str(ckpt)
    assert manifest["settings"]["truncation"] == 0.6 and manifest["classes"] == [0, 5]
    again = sample(compose_sample(tmp_path, f"manifest={tmp_path / 'a' / 'manifest.json'}"), tmp_path / "b")
    assert [p.relative_to(tmp_path / "b") for p in again] == [p.relative_to(tmp_path / "a") for p in first]
    assert read_bytes(again) == read_bytes(first)
    assert (tmp_path / "b" / "grid.png").read_bytes() == (tmp_path / "a" / "grid.png").read_bytes()

    other = distinct_classes(ckpt, tmp_path / "other.ckpt")
    with pytest.raises(ConfigError, match="SHA-256 differs"):
        sample(compose_sample(tmp_path, f"manifest={tmp_path / 'a' / 'manifest.json'}", f"ckpt_path={other}"),
               tmp_path / "c")


@pytest.mark.parametrize(
    ("model", "overrides", "match"),
    [
        ("dcgan", ["truncation=1.5"], "truncation=1.5 is outside"),
        ("dcgan", ["truncation=0"], "truncation=0 is outside"),
        ("dcgan", ["mode=interpolate", "seeds=[1]"], "at least 2 seeds"),
        ("dcgan", ["mode=interpolate", "seeds=[1,2]", "steps=1"], "steps=1"),
        ("dcgan", ["mode=classes"], "unconditional"),
        ("cgan_pd", ["mode=classes", "classes=[10]"], "out of range"),
        ("cgan_pd", ["mode=interpolate", "seeds=[1,2,3]", "classes=[1,2]"], "one per seed"),
        ("dcgan", ["mode=walk"], "mode=walk is not one of"),
    ],
)
def test_bad_settings_are_config_errors(checkpoints, tmp_path, model, overrides, match):
    with pytest.raises(ConfigError, match=match):
        run(tmp_path, checkpoints[model], "bad", *overrides)


@pytest.mark.parametrize(("psi", "same"), [(1.0, True), (0.3, False)])
def test_sample_grid_writes_a_truncated_grid_next_to_the_plain_one(tmp_path, psi, same):
    train(compose_train(tmp_path, "model=dcgan", *TINY_GAN, f"callbacks.sample_grid.truncation={psi}"))
    samples = tmp_path / "run" / "samples"
    plain, truncated = samples / "epoch_0000.png", samples / "epoch_0000_truncated.png"
    assert (plain.read_bytes() == truncated.read_bytes()) is same


def test_sample_grid_refuses_truncation_outside_the_range(tmp_path):
    with pytest.raises(ConfigError, match="callbacks.sample_grid.truncation=2"):
        train(compose_train(tmp_path, "model=dcgan", *TINY_GAN, "callbacks.sample_grid.truncation=2"))
