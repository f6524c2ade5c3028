"""Compose the real config tree exactly as the command line does, and run entry points as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

from hydra import compose, initialize_config_dir
from lightning.pytorch import Callback, LightningModule
from omegaconf import DictConfig

from parti_exp import CONF_DIR
from parti_exp.train import train

REPO_ROOT = Path(__file__).resolve().parent.parent

# Small nets and few steps: the tests check the framework's behaviour, not image quality.
FAST = [
    "trainer.accelerator=cpu",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "model.generator.width=8",
    "model.discriminator.width=8",
    "data.batch_size=32",
    "metrics=none",
]

# A tiny image tokenizer (model=vqgan at 16 px): stage 1 for the text-to-image tests.
TINY_VQGAN = [
    "model=vqgan",
    "data.img_size=16",
    "model.generator.width=8",
    "model.discriminator.width=8",
    "model.generator.codebook_size=32",
    "trainer.limit_val_batches=1",
]


def compose_train(tmp_path: Path, *overrides: str, fast: bool = True) -> DictConfig:
    """The composed ``conf/train.yaml`` with outputs under ``tmp_path`` (no Hydra runtime needed)."""
    paths = [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'run'}"]
    # The DCGAN's nets are the cheapest of the zoo: a fast test that names no model (nor an experiment, which may)
    # gets them; the default run's cgan_pd is tested by name.
    chooses_model = any(override.startswith(("model=", "experiment=")) for override in overrides)
    pinned = ["model=dcgan"] if fast and not chooses_model else []
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(config_name="train", overrides=[*pinned, *(FAST if fast else []), *paths, *overrides])


# One batch of a GAN at 16 px: checkpoints for the sampling and projection tools, not for image quality.
TINY_GAN = [
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=0",
    "data.img_size=16",
    "model.generator.latent_dim=8",
]


def one_batch_checkpoints(tmp_path_factory, models: tuple[str, ...]) -> dict[str, Path]:
    """model name -> checkpoints/last.ckpt of a ``TINY_GAN`` run of that model."""
    paths = {}
    for model in models:
        root = tmp_path_factory.mktemp(model)
        train(compose_train(root, f"model={model}", *TINY_GAN))
        paths[model] = root / "run" / "checkpoints" / "last.ckpt"
    return paths


# The smallest stage-2 Transformer (the keys of both text-to-image decoders).
TINY_TRANSFORMER = [
    "model.transformer.dim=32",
    "model.transformer.encoder_depth=1",
    "model.transformer.decoder_depth=1",
    "model.transformer.heads=2",
]


def tiny_tokenizer(tmp_path_factory) -> Path:
    """checkpoints/last.ckpt of a three-batch ``TINY_VQGAN`` run: a stage-1 image tokenizer for stage-2 tests."""
    root = tmp_path_factory.mktemp("tokenizer")
    train(compose_train(root, *TINY_VQGAN, "trainer.limit_train_batches=3"))
    return root / "run" / "checkpoints" / "last.ckpt"


def compose_sample(tmp_path: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(config_name="sample", overrides=[f"paths.root_dir={tmp_path}", *overrides])


def compose_edit(tmp_path: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(config_name="edit", overrides=[f"paths.root_dir={tmp_path}", *overrides])


def compose_project(tmp_path: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(config_name="project", overrides=[f"paths.root_dir={tmp_path}", *overrides])


def compose_translate(tmp_path: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(config_name="translate", overrides=[f"paths.root_dir={tmp_path}", *overrides])


def compose_export(tmp_path: Path, *overrides: str) -> DictConfig:
    """``conf/export.yaml`` drawing its samples on the CPU."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(config_name="export", overrides=[f"paths.root_dir={tmp_path}", "device=cpu", *overrides])


def subprocess_env() -> dict[str, str]:
    """Environment for running ``python -m parti_exp...`` in a child process: quiet and single-threaded
    enough not to starve the parallel test runner."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    env["PYTHONWARNINGS"] = "ignore"
    return env


def run_entry_point(
    module: str,
    *args: str,
    cwd: Path = REPO_ROOT,
    env: dict[str, str] | None = None,
    timeout: int = 600,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """``python -m module args...`` as a user runs it; with ``check``, a non-zero exit fails the test with
    the end of its stderr."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env or subprocess_env(),
    )
    assert not check or result.returncode == 0, result.stderr[-4000:]
    return result


class BeforeFit(Callback):
    """Calls ``change(module)`` once the run has built its module, before the first step: a test's way to swap in
    a recording regularizer or augmentation while ``train`` builds everything else as the command line does."""

    def __init__(self, change: Callable[[LightningModule], None]) -> None:
        self.change = change

    def setup(self, trainer, pl_module: LightningModule, stage: str) -> None:
        self.change(pl_module)


def record_generator_labels(monkeypatch) -> list:
    """The labels each forward of the conditional generator receives, in call order (a list the test reads)."""
    from parti_exp.nets.cgan_pd import ConditionalResNetGenerator

    seen = []
    forward = ConditionalResNetGenerator.forward

    def recording(self, z, labels=None):
        seen.append(labels.clone())
        return forward(self, z, labels)

    monkeypatch.setattr(ConditionalResNetGenerator, "forward", recording)
    return seen
