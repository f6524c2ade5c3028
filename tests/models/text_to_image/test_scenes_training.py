"""The digit-scenes benchmark's two presets as a user runs them (experiment=tokenizer_scenes, then
experiment=parti_scenes), shrunk to a few steps: stage 2 logs scene accuracy, seen and held out, with and without
guidance, and no caption accuracy (scene captions are free text)."""

import pytest
from hydra_compose import compose_train

from parti_exp.train import train

pytestmark = pytest.mark.slow

SMALL_DATA = ["data.num_train=128", "data.num_val=32", "trainer.limit_val_batches=1", "trainer.max_epochs=1",
              "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def test_both_presets_run_and_stage_two_logs_scene_accuracy(tmp_path, scene_reader_cache):
    train(compose_train(
        tmp_path / "stage1", "experiment=tokenizer_scenes", *SMALL_DATA, "trainer.limit_train_batches=2",
        "model.generator.width=8", "model.discriminator.width=8", "model.generator.codebook_size=32", fast=False,
    ))
    tokenizer_ckpt = tmp_path / "stage1" / "run" / "checkpoints" / "last.ckpt"
    run = train(compose_train(
        tmp_path / "stage2", "experiment=parti_scenes", *SMALL_DATA, f"model.tokenizer_ckpt={tokenizer_ckpt}",
        "trainer.limit_train_batches=2", "model.transformer.dim=32", "model.transformer.encoder_depth=1",
        "model.transformer.decoder_depth=1", "model.transformer.heads=2", "callbacks.prompt_grid.per_prompt=2",
        f"callbacks.scene_accuracy.cache_dir={scene_reader_cache}", "callbacks.scene_accuracy.per_prompt=1",
        "callbacks.scene_accuracy.every_n_epochs=1",
        "callbacks.scene_accuracy.specs_per_category=1", "callbacks.scene_accuracy.phrasings=1", fast=False,
    ))
    logged = run.trainer.callback_metrics
    assert run.module.image_tokenizer.token_grid == (8, 8)
    assert run.module.sampling.guidance_scale == 2.0  # the preset's: 3 leaves strokes in empty cells
    for guidance in ("", "_unguided"):
        for group in ("", "_heldout"):
            for category in ("", "_count", "_left_right", "_above_below"):
                assert 0.0 <= float(logged[f"val/scene_accuracy{group}{category}{guidance}"]) <= 1.0
        assert f"val/scene_accuracy_identity{guidance}" in logged
        assert f"val/scene_accuracy_heldout_identity{guidance}" not in logged  # no identity is held out
    assert not any(key.startswith("val/caption_acc") for key in logged)
    assert (tmp_path / "stage2" / "run" / "samples" / "epoch_0000.png").is_file()
