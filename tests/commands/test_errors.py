"""The bad-input catalogue (docs/errors.md): each mistake is refused before training starts, with a message that
says what was wrong and what to do, and leaves no checkpoint or partial file behind. Dataset-file, cache and
Inception-weight errors have their own tests next to their loaders (tests/data, tests/metrics)."""


import pytest
import torch
from checkpoint_helpers import OLD_TOKENIZER, RunsShell
from hydra.errors import MissingConfigException
from hydra_compose import run_entry_point, subprocess_env

from parti_exp.runtime.checkpoints import read_checkpoint
from parti_exp.train import train

TINY = ["trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]

# (overrides, exception type, a regular expression the message must match)
BAD_CONFIGS = [
    (["data.batch_size=0"], ValueError, r"data.batch_size must be a positive integer, got 0"),
    (["data.batch_size=-8"], ValueError, r"data.batch_size must be a positive integer, got -8"),
    (["model.g_optimizer.lr=0"], ValueError, r"model.g_optimizer.lr must be a positive number, got 0"),
    (["model.d_optimizer.lr=-1e-4"], ValueError, r"model.d_optimizer.lr must be a positive number, got -0.0001"),
    (["model.n_critic=0"], ValueError, r"model.n_critic must be an integer >= 1, got 0"),
    (["augment=ada", "augment.pipeline.target=1.5"], ValueError,
     r"augment.pipeline.target must be in \(0, 1\), got 1.5"),
    (["data.num_train=0"], ValueError,
     r"data.num_train must be null \(all training digits\) or an integer >= 1, got 0"),
    (["metrics=classifier", "metrics.num_fake=0"], ValueError, r"metrics.num_fake must be an integer >= \d+, got 0"),
    (["metrics=classifier", "metrics.num_real_knn=5"], ValueError,
     r"metrics.num_real_knn must be an integer >= 6 .*got 5"),
    (["data.img_size=24"], ValueError, r"image size of 4 \* 2\*\*k pixels.*got 24. Set data.img_size"),
    (["precision=16-mixed", "trainer.accelerator=cpu"], ValueError,
     r"precision=16-mixed needs a CUDA GPU.*Use precision=32-true on the CPU"),
    (["callbacks.model_checkpoint.every_n_g_steps=0"], ValueError,
     r"model_checkpoint.every_n_g_steps must be a positive integer or null, got 0"),
    (["callbacks.preemption.signals=[SIGTERM,SIGNOPE]"], ValueError, r"unknown signal names \['SIGNOPE'\]"),
    (["ckpt_path=/nowhere/last.ckpt"], FileNotFoundError, r"ckpt_path=/nowhere/last.ckpt does not exist; give a .ckpt"),
]


@pytest.mark.parametrize("overrides,error,message", BAD_CONFIGS, ids=lambda v: v[0] if isinstance(v, list) else "")
def test_bad_config_is_refused_before_training_with_a_clear_message(cfg_factory, tmp_path, overrides, error, message):
    with pytest.raises(error, match=message):
        train(cfg_factory(*TINY, *overrides))
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("group", ["model", "data", "loss", "trainer", "precision"])
def test_unknown_group_option_lists_the_choices(cfg_factory, group):
    with pytest.raises(MissingConfigException, match=rf"Could not find '{group}/nosuch'[\s\S]*Available options"):
        cfg_factory(f"{group}=nosuch")


@pytest.fixture
def digits_checkpoint(cfg_factory, tmp_path):
    train(cfg_factory(*TINY, f"paths.output_dir={tmp_path / 'first'}"))
    return tmp_path / "first" / "checkpoints" / "last.ckpt"


def test_a_file_that_is_not_a_checkpoint(cfg_factory, tmp_path):
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=rf"ckpt_path={text} is not a readable PyTorch checkpoint"):
        train(cfg_factory(*TINY, f"ckpt_path={text}"))


def test_a_directory_without_a_last_checkpoint(cfg_factory, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"is a directory without checkpoints/last.ckpt"):
        train(cfg_factory(*TINY, f"ckpt_path={tmp_path}"))


def test_a_checkpoint_of_another_model(cfg_factory, tmp_path, digits_checkpoint):
    expected = r"different setup.*model.discriminator._target_: checkpoint 'parti_exp.nets.dcgan.DCGANDiscriminator'"
    with pytest.raises(ValueError, match=expected + r".*Pass the same model=/data="):
        train(cfg_factory(*TINY, "model=sngan", f"ckpt_path={digits_checkpoint}"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_checkpoint_with_other_image_channels(cfg_factory, tmp_path, digits_checkpoint):
    # A checkpoint of an RGB run (same nets), resumed on the grayscale digits.
    checkpoint = torch.load(digits_checkpoint, weights_only=False)
    checkpoint["parti_exp_config"]["data"]["channels"] = 3
    rgb = tmp_path / "rgb.ckpt"
    torch.save(checkpoint, rgb)
    with pytest.raises(ValueError, match=r"data.channels: checkpoint 3, this run 1"):
        train(cfg_factory(*TINY, f"ckpt_path={rgb}"))
    assert read_checkpoint(digits_checkpoint)["gan_steps"]["g_step"] == 2, "the checkpoint itself is untouched"


# On the command line: our errors print as their message (and Hydra's one-line hint) with exit code 1, also when
# raised inside a Lightning hook; HYDRA_FULL_ERROR=1 shows the traceback; a bug keeps its traceback.
CLI_TINY = ["model.generator.width=8", "model.discriminator.width=8", "metrics=none", "trainer.limit_train_batches=1"]


def run_train(tmp_path, *overrides, env=None):
    return run_entry_point("parti_exp.train", *CLI_TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}",
                           f"paths.root_dir={tmp_path}", env=env, check=False)


def assert_message_alone(result, message):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert lines[-2].startswith(message) and lines[-1].startswith("Set the environment variable HYDRA_FULL_ERROR=1")


@pytest.mark.slow
def test_missing_data_found_inside_a_lightning_hook_prints_as_its_message(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_train(tmp_path, "data=cifar10", f"paths.data_dir={tmp_path / 'empty'}")
    assert_message_alone(result, f"CIFAR-10 not found: looked in {tmp_path / 'empty' / 'cifar-10-batches-py'}")
    full = run_train(tmp_path, "data=cifar10", f"paths.data_dir={tmp_path / 'empty'}",
                     env={**subprocess_env(), "HYDRA_FULL_ERROR": "1"})
    assert full.returncode == 1 and "Traceback (most recent call last)" in full.stderr
    assert "parti_exp/data/cifar10.py" in full.stderr and "CIFAR-10 not found" in full.stderr


@pytest.mark.slow
def test_a_split_smaller_than_the_batch_prints_as_its_message(tmp_path):
    assert_message_alone(run_train(tmp_path, "data.batch_size=5000"), "DigitsDataModule: the train split has")


@pytest.mark.slow
def test_a_bug_keeps_its_traceback(tmp_path):
    result = run_train(tmp_path, "+model.no_such_argument=1")  # a TypeError in a constructor: not one of ours
    assert result.returncode == 1 and "Traceback (most recent call last)" in result.stderr
    assert "TypeError" in result.stderr and "no_such_argument" in result.stderr


@pytest.mark.slow
def test_sample_refuses_a_checkpoint_that_would_run_code(tmp_path):
    marker = tmp_path / "pwned"
    checkpoint = torch.load(OLD_TOKENIZER, weights_only=True)
    checkpoint["extra"] = RunsShell(f"touch {marker}")
    torch.save(checkpoint, tmp_path / "last.ckpt")
    result = run_entry_point("parti_exp.sample", f"ckpt_path={tmp_path / 'last.ckpt'}", f"out_dir={tmp_path / 'out'}",
                             f"paths.root_dir={tmp_path}", check=False)
    assert_message_alone(result, f"ckpt_path={tmp_path / 'last.ckpt'} was not loaded")
    assert "posix.system" in result.stderr and "trust_checkpoint=true" in result.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()
