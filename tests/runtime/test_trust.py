"""Checkpoints from strangers: a pickled callable and a stored config that builds a file-writing function are refused
by every reader (sample, evaluate, resume, Lightning's own resume load, model.tokenizer_ckpt) before anything runs;
trust_checkpoint=true is the only way past; and every checkpoint the framework writes loads as data."""

from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoint_helpers import OLD_PARTI, OLD_TOKENIZER, RunsShell
from hydra import compose, initialize_config_dir
from hydra_compose import compose_edit, compose_sample, compose_train

from parti_exp import CONF_DIR
from parti_exp.builders import build_module
from parti_exp.edit import edit
from parti_exp.errors import UntrustedCheckpointError
from parti_exp.evaluate import evaluate
from parti_exp.runtime.checkpoints import (
    CONFIG_KEY,
    MODEL_EXTRAS_KEY,
    AtomicCheckpointIO,
    module_from_checkpoint,
    read_checkpoint,
    write_atomically,
)
from parti_exp.runtime.trust import target_refusal, trusting_checkpoints
from parti_exp.sample import sample
from parti_exp.train import train

TOKENIZER = OLD_TOKENIZER  # a real model=vqgan checkpoint
PARTI = OLD_PARTI  # a real model=parti checkpoint


def pickled_call(tmp_path: Path, marker: Path) -> Path:
    """A real checkpoint with one extra pickled object that creates ``marker`` when unpickled."""
    checkpoint = torch.load(TOKENIZER, weights_only=True)
    checkpoint["extra"] = RunsShell(f"touch {marker}")
    torch.save(checkpoint, tmp_path / "pickled_call.ckpt")
    return tmp_path / "pickled_call.ckpt"


def stored_target(tmp_path: Path, marker: Path) -> Path:
    """A real checkpoint whose stored config builds ``shutil.copyfile`` as the generator: it would copy a file to
    ``marker`` wherever the generator is built (sample, evaluate, tokenizer loading)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    checkpoint = torch.load(TOKENIZER, weights_only=True)
    checkpoint[CONFIG_KEY]["model"]["generator"] = {"_target_": "shutil.copyfile", "src": str(secret),
                                                    "dst": str(marker)}
    torch.save(checkpoint, tmp_path / "stored_target.ckpt")
    return tmp_path / "stored_target.ckpt"


def compose_evaluate(tmp_path: Path, *overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(config_name="evaluate", overrides=[f"paths.root_dir={tmp_path}", *overrides])


READERS = {
    "sample": lambda tmp_path, ckpt: sample(compose_sample(tmp_path, f"ckpt_path={ckpt}"), tmp_path / "out"),
    "evaluate": lambda tmp_path, ckpt: evaluate(compose_evaluate(tmp_path, f"ckpt_path={ckpt}"), tmp_path / "eval"),
    # Any existing file passes as the image: the checkpoint is read before any image is.
    "edit": lambda tmp_path, ckpt: edit(compose_edit(tmp_path, f"ckpt_path={ckpt}", f"image={ckpt}", "prompt=a one"),
                                        tmp_path / "out"),
    "resume": lambda tmp_path, ckpt: train(compose_train(tmp_path, "experiment=tokenizer_digits", f"ckpt_path={ckpt}")),
    "tokenizer": lambda tmp_path, ckpt: build_module(compose_train(
        tmp_path, "experiment=parti_digits", f"model.tokenizer_ckpt={ckpt}", "model.transformer.dim=16", fast=False)),
    "lightning": lambda tmp_path, ckpt: AtomicCheckpointIO().load_checkpoint(str(ckpt)),
}


@pytest.mark.parametrize("reader", READERS)
def test_a_pickled_callable_is_refused_and_never_runs(tmp_path, reader):
    marker = tmp_path / "pwned"
    ckpt = pickled_call(tmp_path, marker)
    with pytest.raises(UntrustedCheckpointError, match=r"posix\.system") as refused:
        READERS[reader](tmp_path, ckpt)
    assert "trust_checkpoint=true" in str(refused.value) and str(ckpt) in str(refused.value)
    assert not marker.exists()
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("reader", ["sample", "evaluate", "edit", "resume", "tokenizer"])
def test_a_stored_config_building_a_function_is_refused_and_never_runs(tmp_path, reader):
    marker = tmp_path / "copied"
    ckpt = stored_target(tmp_path, marker)
    expected = r"model\.generator\._target_='shutil\.copyfile'.*trust_checkpoint=true"
    with pytest.raises(UntrustedCheckpointError, match=expected):
        READERS[reader](tmp_path, ckpt)
    assert not marker.exists()


def test_a_config_written_as_yaml_text_inside_the_stored_config_is_checked_too(tmp_path):
    # The text-to-image module records its tokenizer's config as YAML text and builds it itself.
    marker, secret = tmp_path / "copied", tmp_path / "secret.txt"
    secret.write_text("private")
    checkpoint = torch.load(PARTI, weights_only=True)
    text = f"_target_: shutil.copyfile\nsrc: {secret}\ndst: {marker}\n"
    checkpoint[CONFIG_KEY]["model"]["image_tokenizer"] = text
    checkpoint[MODEL_EXTRAS_KEY] = {"image_tokenizer": text}
    torch.save(checkpoint, tmp_path / "yaml.ckpt")
    with pytest.raises(UntrustedCheckpointError, match=r"model\.image_tokenizer\._target_='shutil\.copyfile'"):
        READERS["sample"](tmp_path, tmp_path / "yaml.ckpt")
    assert not marker.exists()


def test_trust_checkpoint_true_loads_with_full_pickle(tmp_path):
    # The other side of the refusals above: the flag does load the file, and runs what it holds.
    marker = tmp_path / "pwned"
    ckpt = pickled_call(tmp_path, marker)
    with trusting_checkpoints(True):
        read_checkpoint(ckpt)
    assert marker.exists()
    with pytest.raises(UntrustedCheckpointError, match="must be true or false"):
        with trusting_checkpoints("false"):
            pass


@pytest.mark.parametrize(
    "target,reason",
    [
        ("parti_exp.nets.dcgan.DCGANGenerator", None),
        ("torch.optim.Adam", None),
        ("torch.optim.lr_scheduler.StepLR", None),
        ("torch.nn.Linear", None),
        ("lightning.pytorch.callbacks.ModelCheckpoint", None),
        ("shutil.copyfile", "not under"),
        ("builtins.eval", "not under"),
        ("parti_exp.runtime.checkpoints.write_atomically", "a function, not a class"),
        ("parti_exp.runtime.checkpoints.io.FileIO", "defined outside"),  # reached through one of our modules
        ("parti_exp.nets.nowhere.Net", "no such class"),
        ("parti_exp.nets.dcgan.Nowhere", "no such class"),
        (42, "not under"),
    ],
)
def test_the_target_allow_list(target, reason):
    refusal = target_refusal(target)
    assert refusal is None if reason is None else reason in refusal


def test_a_checkpoint_that_would_need_pickle_is_never_written(tmp_path):
    path = tmp_path / "last.ckpt"
    with pytest.raises(TypeError, match=r"numpy.*tensors, numbers, strings and containers"):
        write_atomically({"state_dict": {}, "rng": np.random.get_state()}, path)
    assert not path.exists() and list(tmp_path.iterdir()) == []


TINY = ["trainer.max_epochs=1", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1", "data.img_size=16"]
WRITTEN = {
    "dcgan+ema+schedules": [
        "model.ema={_target_:parti_exp.models.gan.ema.EMA,beta:0.9,half_life_images:null,rampup:null}",
        "model.d_scheduler={_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,step_size:1}",
        "model.g_scheduler={_target_:torch.optim.lr_scheduler.LinearLR,_partial_:true}",
    ],
    "wgan_gp": ["model=wgan_gp"],
    "sngan": ["model=sngan"],
    "stylegan_lite": ["model=stylegan_lite"],
    "cgan_pd": ["model=cgan_pd"],
    "vqgan": ["model=vqgan", "model.generator.codebook_size=16"],
}


@pytest.mark.parametrize("model", WRITTEN)
def test_every_checkpoint_the_framework_writes_loads_as_data(cfg_factory, tmp_path, model):
    train(cfg_factory(*TINY, *WRITTEN[model]))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(ckpt)) == []
    module, _ = module_from_checkpoint(read_checkpoint(ckpt))
    assert module.state_dict().keys() == read_checkpoint(ckpt)["state_dict"].keys()


def test_a_text_to_image_checkpoint_loads_as_data_and_rebuilds(tmp_path):
    cfg = compose_train(tmp_path, "experiment=parti_digits", f"model.tokenizer_ckpt={TOKENIZER}", *TINY[:3],
                        "model.transformer.dim=16", "metrics=none", "trainer.enable_progress_bar=false",
                        "callbacks.caption_accuracy=null", "callbacks.prompt_grid=null", fast=False)
    train(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(ckpt)) == []
    module, _ = module_from_checkpoint(read_checkpoint(ckpt))
    assert module.text_tokenizer.vocab_size > 3


def test_a_contrastive_checkpoint_loads_as_data_and_rebuilds(tmp_path):
    train(compose_train(tmp_path, "experiment=contrastive_digits", "trainer.fast_dev_run=true",
                        "trainer.enable_progress_bar=false", fast=False))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(ckpt)) == []
    module, _ = module_from_checkpoint(read_checkpoint(ckpt))
    assert module.state_dict().keys() == read_checkpoint(ckpt)["state_dict"].keys()
