"""A run directory stands for its checkpoints/last.ckpt wherever a checkpoint is asked for (ckpt_path of every
command, model.tokenizer_ckpt, scorer_ckpt), and a directory without one is named as such."""

import shutil

import pytest
from checkpoint_helpers import OLD_PARTI, OLD_TOKENIZER
from hydra_compose import compose_edit, compose_sample, compose_train
from PIL import Image

from parti_exp.builders import build_module
from parti_exp.edit import edit
from parti_exp.evaluate import evaluate
from parti_exp.inference.manifest import file_sha256
from parti_exp.models.text_to_image.contrastive import load_contrastive
from parti_exp.runtime.checkpoints import checkpoint_file, read_checkpoint
from parti_exp.sample import sample
from parti_exp.train import train

NO_LAST = r"is a directory without checkpoints/last\.ckpt"


def run_dir_of(checkpoint, tmp_path, name):
    """A run directory as training leaves it, holding ``checkpoint`` as its checkpoints/last.ckpt."""
    run = tmp_path / name
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(checkpoint, run / "checkpoints" / "last.ckpt")
    return run


def test_checkpoint_file_reads_a_file_a_run_dir_or_its_checkpoints_dir(tmp_path):
    run = run_dir_of(OLD_TOKENIZER, tmp_path, "run")
    last = run / "checkpoints" / "last.ckpt"
    assert checkpoint_file(last) == last
    assert checkpoint_file(run) == last and checkpoint_file(run / "checkpoints") == last
    assert read_checkpoint(run)["state_dict"].keys() == read_checkpoint(OLD_TOKENIZER)["state_dict"].keys()
    with pytest.raises(FileNotFoundError, match=rf"scorer_ckpt={tmp_path / 'nothing'} does not exist"):
        checkpoint_file(tmp_path / "nothing", "scorer_ckpt")


def test_sample_takes_a_run_directory_and_its_manifest_names_the_file(tmp_path):
    run = run_dir_of(OLD_PARTI, tmp_path, "parti_run")
    paths = sample(compose_sample(tmp_path, f"ckpt_path={run}", "prompts=[a handwritten seven]", "n=2"),
                   tmp_path / "out")
    assert len(paths) == 2 and Image.open(paths[0]).size == (16, 16)
    manifest = (tmp_path / "out" / "manifest.json").read_text()
    assert str((run / "checkpoints" / "last.ckpt").resolve()) in manifest and file_sha256(OLD_PARTI) in manifest


def test_the_tokenizer_of_stage_two_may_be_a_run_directory(tmp_path):
    run = run_dir_of(OLD_TOKENIZER, tmp_path, "tokenizer_run")
    cfg = compose_train(tmp_path, "experiment=parti_digits", f"model.tokenizer_ckpt={run}",
                        "model.transformer.dim=16", fast=False)
    assert build_module(cfg).image_tokenizer.token_grid == (4, 4)


def test_a_directory_without_last_ckpt_is_named_by_every_command(tmp_path):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=rf"ckpt_path={empty} {NO_LAST}"):
        sample(compose_sample(tmp_path, f"ckpt_path={empty}"), tmp_path / "out")
    image = tmp_path / "in.png"
    Image.new("L", (16, 16)).save(image)
    with pytest.raises(FileNotFoundError, match=NO_LAST):
        edit(compose_edit(tmp_path, f"ckpt_path={empty}", f"image={image}", "prompt=a one"), tmp_path / "edit")
    from hydra import compose, initialize_config_dir

    from parti_exp import CONF_DIR

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name="evaluate", overrides=[f"paths.root_dir={tmp_path}", f"ckpt_path={empty}"])
    with pytest.raises(FileNotFoundError, match=NO_LAST):
        evaluate(cfg, tmp_path / "eval")
    with pytest.raises(FileNotFoundError, match=rf"model.tokenizer_ckpt={empty} {NO_LAST}"):
        build_module(compose_train(tmp_path, "experiment=parti_digits", f"model.tokenizer_ckpt={empty}", fast=False))
    with pytest.raises(FileNotFoundError, match=rf"scorer_ckpt={empty} {NO_LAST}"):
        load_contrastive(empty)
    with pytest.raises(FileNotFoundError, match=rf"ckpt_path={empty} {NO_LAST}"):
        train(compose_train(tmp_path, f"ckpt_path={empty}"))
