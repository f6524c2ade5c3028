"""The ResNet-era models (sngan, cgan_pd, stylegan_lite) train on the digits through the unchanged loop,
and cgan_pd samples the classes asked for."""

import pytest
import torch
from hydra_compose import compose_sample, record_generator_labels
from PIL import Image

from parti_exp.sample import sample
from parti_exp.train import train


def test_conditional_sampling_uses_the_requested_classes(cfg_factory, tmp_path, monkeypatch):
    train(cfg_factory("model=cgan_pd", "trainer.limit_train_batches=2", "trainer.limit_val_batches=0"))
    seen = record_generator_labels(monkeypatch)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    paths = sample(
        compose_sample(tmp_path, f"ckpt_path={ckpt}", "n=7", "batch_size=4", "classes=[2,7,9]"), tmp_path / "s"
    )
    assert torch.cat(seen).tolist() == [2, 7, 9, 2, 7, 9, 2]
    assert len(paths) == 7
    image = Image.open(paths[0])
    assert image.size == (16, 16) and image.mode == "L"

    with pytest.raises(ValueError, match="out of range for 10 classes"):
        sample(compose_sample(tmp_path, f"ckpt_path={ckpt}", "classes=[10]"), tmp_path / "bad")
