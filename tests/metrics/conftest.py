"""Fixtures for the metrics tests: random Inception weights (the real extraction code runs offline), one
classifier/statistics cache per session, small image folders, and the composed evaluate config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from lightning.pytorch.strategies import SingleDeviceStrategy
from PIL import Image

from parti_exp import CONF_DIR
from parti_exp.data import DigitsDataModule
from parti_exp.metrics.inception import random_weights_file


@pytest.fixture(autouse=True)
def single_threaded(one_thread):
    """Every metrics test on one thread (tests/conftest.py says why)."""


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory) -> Path:
    """A randomly initialised torch-fidelity InceptionV3 state dict, saved once per session."""
    return random_weights_file(tmp_path_factory.mktemp("inception") / "weights.pth")


@pytest.fixture(scope="session")
def metrics_cache(tmp_path_factory) -> Path:
    """A cache_dir shared by the session's tests, so the digit classifier trains once."""
    return tmp_path_factory.mktemp("metrics_cache")


@pytest.fixture(scope="session")
def digits() -> DigitsDataModule:
    datamodule = DigitsDataModule(img_size=16)  # data=digits' size, as the models composed by the tests
    datamodule.setup("fit")
    return datamodule


@pytest.fixture
def cpu() -> SingleDeviceStrategy:
    return SingleDeviceStrategy(device=torch.device("cpu"))


def write_pngs(folder: Path, images: np.ndarray) -> Path:
    """uint8 ``N x 1 x H x W`` images as grayscale PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image[0]).save(folder / f"{i:04d}.png")
    return folder


@pytest.fixture
def png_writer():
    """``write_pngs``, for the tests here: a fixture because ``conftest`` is no importable name when other test
    folders' conftest files are collected in the same run."""
    return write_pngs


@pytest.fixture(scope="session")
def digit_folders(tmp_path_factory, digits) -> tuple[Path, Path]:
    """(real, fake): 10 held-out digits, and 10 other digits with noise added: two different small sets
    (Inception takes about 0.1 s per image on a CPU)."""
    root = tmp_path_factory.mktemp("folders")
    real = digits.val_set.images[:10]
    noise = np.random.default_rng(0).normal(0, 40, size=real.shape)
    fake = np.clip(digits.val_set.images[10:20] + noise, 0, 255).astype(np.uint8)
    return write_pngs(root / "real", real), write_pngs(root / "fake", fake)


@pytest.fixture
def evaluate_cfg(tmp_path):
    """``evaluate_cfg(*overrides)``: the composed ``conf/evaluate.yaml`` with paths under ``tmp_path``."""

    def compose_evaluate(*overrides: str):
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            return compose(config_name="evaluate", overrides=[f"paths.root_dir={tmp_path}", *overrides])

    return compose_evaluate
