"""Class paths that moved: a checkpoint's stored config reads with each mapped to the class's home today
(tests/runtime/test_checkpoints.py loads and samples such checkpoints), and a config of the user's own that names an
old path is refused with the new one."""

import importlib

import pytest
from hydra_compose import compose_train

from parti_exp.builders import build_callbacks, build_module
from parti_exp.errors import ConfigError
from parti_exp.runtime.moved_targets import MOVED_CLASSES, MOVED_MODULES, moved_target, with_moved_targets
from parti_exp.runtime.trust import target_refusal


def test_every_old_module_has_a_home_and_every_moved_class_is_found_there():
    for old, new in MOVED_MODULES.items():
        importlib.import_module(new)
        with pytest.raises(ImportError):
            importlib.import_module(old)
    for new in MOVED_CLASSES.values():
        assert target_refusal(new) is None, new  # an existing class of ours, buildable from a checkpoint


def test_old_paths_map_by_class_first_then_by_module():
    assert moved_target("parti_exp.callbacks.gan_checkpoint.GANCheckpoint") == (
        "parti_exp.callbacks.step_checkpoint.StepCheckpoint"
    )
    assert moved_target("parti_exp.gan.GANModule") == "parti_exp.models.gan.module.GANModule"
    assert moved_target("parti_exp.parti.transformer.TextToImageTransformer") == (
        "parti_exp.nets.transformer.TextToImageTransformer"
    )
    assert moved_target("parti_exp.nets.dcgan.DCGANGenerator") is None  # never moved
    assert moved_target("parti_exp.data.DigitsDataModule") is None
    config = {"model": {"_target_": "parti_exp.vae.VAEModule", "guard": {"_target_": "parti_exp.guard.NonFiniteGuard"}},
              "plugins": [{"_target_": "parti_exp.checkpoints.AtomicCheckpointIO"}], "tags": ["parti_exp.gan"]}
    assert with_moved_targets(config) == {
        "model": {"_target_": "parti_exp.models.vae.module.VAEModule",
                  "guard": {"_target_": "parti_exp.runtime.guard.NonFiniteGuard"}},
        "plugins": [{"_target_": "parti_exp.runtime.checkpoints.AtomicCheckpointIO"}],
        "tags": ["parti_exp.gan"],  # only _target_ values are paths
    }


def test_a_users_config_naming_an_old_path_is_refused_with_the_new_one(tmp_path):
    cfg = compose_train(tmp_path, "model._target_=parti_exp.gan.GANModule",
                        "model.guard._target_=parti_exp.guard.NonFiniteGuard")
    new_paths = (r"_target_: parti_exp\.gan\.GANModule is now _target_: parti_exp\.models\.gan\.module\.GANModule; "
                 r"_target_: parti_exp\.guard\.NonFiniteGuard is now _target_: "
                 r"parti_exp\.runtime\.guard\.NonFiniteGuard\)")
    with pytest.raises(ConfigError, match=new_paths + ": write the new paths in your config file"):
        build_module(cfg)
    old_callback = "parti_exp.callbacks.gan_checkpoint.GANCheckpoint"
    cfg = compose_train(tmp_path, f"callbacks.model_checkpoint._target_={old_callback}")
    with pytest.raises(ConfigError, match="parti_exp.callbacks.step_checkpoint.StepCheckpoint"):
        build_callbacks(cfg)
