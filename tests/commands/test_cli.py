"""The two commands a user types, run as real subprocesses: train, then sample from its checkpoint."""

import pytest
import torch
from hydra_compose import compose_sample
from hydra_compose import run_entry_point as run
from PIL import Image

from parti_exp.sample import sample
from parti_exp.train import train


@pytest.mark.slow
def test_train_then_sample_from_the_command_line(tmp_path):
    run_dir = tmp_path / "run"
    trained = run(
        "parti_exp.train",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=4",
        "trainer.log_every_n_steps=1",
        "model.generator.width=8",
        "model.discriminator.width=8",
        f"hydra.run.dir={run_dir}",
        f"paths.root_dir={tmp_path}",
    )
    # The console says where the run is written, as it starts and when it is done.
    console = trained.stdout + trained.stderr
    assert f"run directory: {run_dir}" in console and f"run written to {run_dir}" in console
    assert console.index("run directory:") < console.index("run written to")
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["epoch_0000.png", "epoch_0001.png"]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "curves.png").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    rows = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    assert "train/d_loss" in rows[0] and len(rows) >= 5

    out_dir = tmp_path / "samples"
    result = run(
        "parti_exp.sample",
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
        "n=12",
        f"out_dir={out_dir}",
        f"paths.root_dir={tmp_path}",
    )
    files = sorted(p.name for p in out_dir.iterdir())
    assert files == [f"{i:06d}.png" for i in range(12)] + ["grid.png", "manifest.json"]
    image = Image.open(out_dir / "000011.png")
    assert image.size == (16, 16) and image.mode == "L"  # the digits' resolution and single channel
    assert "wrote 12 images" in result.stdout

    # The manifest alone draws the same images again.
    again = tmp_path / "again"
    run("parti_exp.sample", f"manifest={out_dir / 'manifest.json'}", f"out_dir={again}", f"paths.root_dir={tmp_path}")
    for name in [f"{i:06d}.png" for i in range(12)] + ["grid.png"]:
        assert (again / name).read_bytes() == (out_dir / name).read_bytes()


@pytest.mark.parametrize("model", ["dcgan", "wgan_gp"])
def test_sample_works_for_every_model_and_is_reproducible(cfg_factory, tmp_path, model):
    cfg = cfg_factory(f"model={model}", "trainer.limit_train_batches=2", "data.img_size=16")
    train(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    first = sample(compose_sample(tmp_path, f"ckpt_path={ckpt}", "n=5", "batch_size=2"), tmp_path / "a")
    second = sample(compose_sample(tmp_path, f"ckpt_path={ckpt}", "n=5", "batch_size=5"), tmp_path / "b")
    assert len(first) == 5
    pixels = lambda path: torch.tensor(list(Image.open(path).getdata()))
    for a, b in zip(first, second):
        # Same seed, different batching: the same latents; kernels chosen per batch size may round
        # a pixel differently, never by more than one grey level.
        assert (pixels(a) - pixels(b)).abs().max() <= 1
    assert Image.open(first[0]).size == (16, 16)
    assert Image.open(tmp_path / "a" / "grid.png").mode == "L"


def test_sample_rejects_a_missing_or_foreign_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sample(compose_sample(tmp_path, f"ckpt_path={tmp_path / 'nope.ckpt'}"), tmp_path / "out")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ValueError, match="not a parti_exp training checkpoint"):
        sample(compose_sample(tmp_path, f"ckpt_path={foreign}"), tmp_path / "out")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        sample(compose_sample(tmp_path, f"ckpt_path={garbage}"), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written
