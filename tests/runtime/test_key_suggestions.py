"""A mistyped key is answered with the keys it was probably meant to be; a documented per-call sampling key works."""

import sys

import pytest
from checkpoint_helpers import OLD_PARTI
from hydra_compose import compose_sample

from parti_exp.inference.prompts import sampling_of
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.runtime.key_suggestions import run_with_key_suggestions, unknown_key_suggestions


def test_a_mistyped_key_gets_the_nearest_keys_of_the_config_the_groups_compose():
    lines = unknown_key_suggestions("train", ["trainer.max_epoch=5", "model=vqgan", "model.generator.widht=8",
                                              "data.batch_size=8", "+model.new_key=1", "-m"])
    assert lines[0] == ("trainer.max_epoch is not a key of this config: did you mean trainer.max_epochs or "
                        "trainer.min_epochs or trainer.max_steps?")
    assert lines[1].startswith("model.generator.widht is not a key of this config: did you mean model.generator.width")
    assert len(lines) == 2  # a key that exists, and one added with +, get nothing
    assert unknown_key_suggestions("sample", ["sampling.guidance=2"])[0].endswith(
        "did you mean sampling.guidance_scale?")


def test_the_suggestions_follow_the_error_that_ends_the_command(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["train.py", "trainer.max_epoch=5"])

    def refused():
        raise SystemExit(1)

    with pytest.raises(SystemExit):
        run_with_key_suggestions(refused, "train")
    assert "did you mean trainer.max_epochs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_with_key_suggestions(lambda: sys.exit(0), "train")
    assert capsys.readouterr().err == ""


def test_sampling_keys_are_set_per_call_and_the_others_come_from_the_checkpoint(tmp_path):
    module, _ = module_from_checkpoint(read_checkpoint(OLD_PARTI))
    sampling = sampling_of(module, compose_sample(tmp_path, f"ckpt_path={OLD_PARTI}", "sampling.guidance_scale=1.5"))
    assert sampling.guidance_scale == 1.5 and sampling.temperature == module.sampling.temperature
    assert sampling.top_p == module.sampling.top_p
