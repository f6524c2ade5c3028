"""Stage 2 as a user trains it (`model=parti model.tokenizer_ckpt=...`, over a `model=vqgan` run) on the digits, and
sampling from prompts. Stage 1 alone: tests/models/test_vqgan_module.py."""

import shutil

import pytest
import torch
from checkpoint_helpers import OLD_TOKENIZER
from hydra_compose import TINY_TRANSFORMER, compose_sample, compose_train, tiny_tokenizer
from PIL import Image

from parti_exp.builders import build_datamodule, build_module
from parti_exp.callbacks.caption_accuracy import caption_accuracy
from parti_exp.data.captions.labels import DigitCaptioner
from parti_exp.inference.rerank import sample_reranked
from parti_exp.models.text_to_image.sampling import SamplingConfig
from parti_exp.runtime.checkpoints import read_checkpoint
from parti_exp.sample import sample
from parti_exp.train import train

PARTI_ANY_DATA = [
    "model=parti",
    "data.img_size=16",
    "metrics=none",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.limit_val_batches=1",
    *TINY_TRANSFORMER,
    "callbacks.prompt_grid.per_prompt=2",
]
# On the labelled digits, where caption accuracy is one of the callbacks (conf/model_data/parti_digits.yaml).
PARTI = [*PARTI_ANY_DATA, "callbacks.caption_accuracy.per_class=2"]


@pytest.fixture(scope="module")
def tokenizer_ckpt(tmp_path_factory):
    return tiny_tokenizer(tmp_path_factory)


def test_parti_fast_dev_run_trains_the_transformer_and_leaves_the_tokenizer_frozen(tmp_path, tokenizer_ckpt):
    cfg = compose_train(tmp_path, *PARTI, f"model.tokenizer_ckpt={tokenizer_ckpt}", "trainer.fast_dev_run=true",
                        fast=False)
    module = build_module(cfg)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    run = train(cfg)
    trainer, module = run.trainer, run.module
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("image_tokenizer."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("transformer."))
    assert not module.image_tokenizer.training, "the frozen tokenizer stays in eval mode while training"
    # Cross-entropy over a codebook of 32 starts near log(32) = 3.47.
    assert abs(float(trainer.callback_metrics["train/ce"]) - 3.47) < 0.5
    assert (tmp_path / "run" / "samples" / "epoch_0000.png").is_file()
    for key in ("val/caption_acc", "val/caption_acc_unguided"):
        assert 0.0 <= float(trainer.callback_metrics[key]) <= 1.0


def test_condition_dropout_replaces_captions_by_the_null_caption(tmp_path, tokenizer_ckpt, monkeypatch):
    cfg = compose_train(tmp_path, *PARTI, f"model.tokenizer_ckpt={tokenizer_ckpt}", fast=False)
    module = build_module(cfg)
    module.use_captions(build_datamodule(cfg).caption_source())
    seen = []
    monkeypatch.setattr(module.transformer, "forward", lambda ids, mask, tokens: seen.append((ids, mask)) or
                        torch.zeros(*tokens.shape, 32, requires_grad=True))
    labels = torch.arange(10)
    images = torch.zeros(10, 1, 16, 16)
    null_ids, null_mask = module.text_tokenizer.null(1)
    for dropout, expected_null in ((0.0, 0), (0.999999, 10)):
        module.condition_dropout = dropout
        module._batch_loss((images, labels), drop_conditions=True)
        ids, mask = seen[-1]
        is_null = (ids == null_ids).all(1) & (mask == null_mask).all(1)
        assert int(is_null.sum()) == expected_null


def test_sample_cli_writes_a_folder_per_prompt_and_a_captioned_grid(tmp_path, tokenizer_ckpt):
    train(compose_train(tmp_path, *PARTI, f"model.tokenizer_ckpt={tokenizer_ckpt}", "trainer.max_epochs=1",
                        "trainer.limit_train_batches=2", "callbacks.caption_accuracy=null", fast=False))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    stored = read_checkpoint(ckpt)["text_tokenizer"]
    assert stored["kind"] == "bpe" and isinstance(stored["json"], str)
    # The checkpoint alone rebuilds the model: sampling works with the image tokenizer's own file and the trained
    # text tokenizer's cache gone, and any prompt encodes (unseen words, other scripts).
    moved = tokenizer_ckpt.with_name("moved.ckpt")
    tokenizer_ckpt.rename(moved)
    cache = tmp_path / "data" / ".cache" / "tokenizers"
    assert len(list(cache.glob("bpe-*.json"))) == 1
    shutil.rmtree(cache)
    out = tmp_path / "out"
    prompts = 'prompts=["a handwritten seven","a zebra dancing in Zürich 🦓"]'
    cfg = compose_sample(tmp_path, f"ckpt_path={ckpt}", prompts, "n=3")
    paths = sample(cfg, out)
    assert sorted(p.parent.name for p in paths) == ["a_handwritten_seven"] * 3 + ["a_zebra_dancing_in_zürich__"] * 3
    assert Image.open(paths[0]).size == (16, 16)
    grid = Image.open(out / "grid.png")
    # Two rows of 3 images (16 px + 2 px padding), each under a 14 px caption strip.
    assert grid.size == (3 * 18 + 2, 2 * (14 + 18 + 2))
    with pytest.raises(ValueError, match="text-to-image checkpoint: say what to draw with prompts="):
        sample(compose_sample(tmp_path, f"ckpt_path={ckpt}"), out)
    moved.rename(tokenizer_ckpt)


class FakeModel:
    """Sample i of a call is an image filled with the value i / 100; a scorer prefers larger values."""

    def sample_images(self, captions, sampling=None, generator=None):
        return torch.arange(len(captions)).float().div(100).view(-1, 1, 1, 1).expand(-1, 1, 4, 4)


def test_reranking_keeps_the_best_scored_candidate_of_each_group():
    images, scores = sample_reranked(FakeModel(), "a handwritten seven", n=3, n_candidates=4,
                                     scorer=lambda images, caption: -(images[:, 0, 0, 0] - 0.05).abs())
    # Groups of 4: (0..3), (4..7), (8..11); closest to 0.05 in each: 3, 5, 8.
    assert images[:, 0, 0, 0].tolist() == pytest.approx([0.03, 0.05, 0.08])
    assert scores.tolist() == pytest.approx([-0.02, 0.0, -0.03], abs=1e-6)


def test_caption_accuracy_counts_the_samples_read_as_the_captioned_class(tmp_path, tokenizer_ckpt):
    cfg = compose_train(tmp_path, *PARTI, f"model.tokenizer_ckpt={tokenizer_ckpt}", fast=False)
    module = build_module(cfg)
    module.use_captions(build_datamodule(cfg).caption_source())

    class ReadsEverythingAsSeven:
        def read(self, images):
            return torch.full((len(images),), 7)

    accuracy = caption_accuracy(module, ReadsEverythingAsSeven(), DigitCaptioner(), per_class=3,
                                sampling=SamplingConfig(), seed=0)
    assert accuracy == pytest.approx(1 / 10)  # only the "seven" prompt's samples count as right


def test_a_missing_or_wrong_tokenizer_checkpoint_is_named(tmp_path, tokenizer_ckpt):
    expected = (r"model.tokenizer_ckpt=/nowhere.ckpt does not exist; give a .ckpt file or a run directory "
                r".*model=vqgan` run")
    with pytest.raises(FileNotFoundError, match=expected):
        build_module(compose_train(tmp_path, *PARTI, "model.tokenizer_ckpt=/nowhere.ckpt", fast=False))
    dcgan_run = tmp_path / "dcgan"
    train(compose_train(dcgan_run, "trainer.limit_train_batches=1", "trainer.limit_val_batches=1"))
    with pytest.raises(ValueError, match=r"holds a DCGANGenerator, not an image tokenizer"):
        build_module(compose_train(tmp_path, *PARTI, f"model.tokenizer_ckpt={dcgan_run / 'run/checkpoints/last.ckpt'}",
                                   fast=False))
    # A tokenizer trained at 16 px cannot tokenise 32 px images into the grid it was trained for.
    with pytest.raises(ValueError, match=r"makes a \(8, 8\) token grid from 32 px images"):
        build_module(compose_train(tmp_path, *PARTI, f"model.tokenizer_ckpt={tokenizer_ckpt}", "data.img_size=32",
                                   fast=False))


def test_parti_trains_on_a_captioned_folder_and_samples_a_free_text_prompt(tmp_path):
    """A folder of images with sidecar captions (1 channel, 16 px, like the old digits tokenizer in the fixtures):
    the text tokenizer is trained on those captions, caption accuracy turns itself off (no classes), and the
    checkpoint samples a prompt with words the captions never had."""
    from PIL import Image as PILImage

    folder = tmp_path / "captioned"
    folder.mkdir()
    for i in range(12):
        PILImage.new("L", (16, 16), 20 * i).save(folder / f"img_{i}.png")
        (folder / f"img_{i}.txt").write_text(f"a grey square of shade {i}\na flat tile number {i}\n")
    tokenizer = OLD_TOKENIZER
    run = train(compose_train(tmp_path, *PARTI_ANY_DATA, f"model.tokenizer_ckpt={tokenizer}", "data=captions",
                              f"data.path={folder}", "data.channels=1", "data.batch_size=4", "data.val_fraction=0.25",
                              "metrics=none", "trainer.max_epochs=1", fast=False))
    assert run.module.text_tokenizer.vocab_size <= 512
    assert "val/caption_acc" not in run.metrics
    assert (tmp_path / "run" / "samples" / "epoch_0000.png").is_file()
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    paths = sample(compose_sample(tmp_path, f"ckpt_path={ckpt}", "prompts=[a red bus parked on a street]", "n=2"),
                   tmp_path / "out")
    assert len(paths) == 2 and PILImage.open(paths[0]).size == (16, 16)


def test_the_checkpoint_of_the_lowest_validation_loss_is_kept(tmp_path):
    import csv

    run = tmp_path / "run"
    # A learning rate high enough that the validation loss does not fall every epoch.
    train(compose_train(tmp_path, *PARTI, f"model.tokenizer_ckpt={OLD_TOKENIZER}", "trainer.max_epochs=4",
                        "trainer.limit_train_batches=2", "model.optimizer.lr=0.05", "callbacks.caption_accuracy=null",
                        "callbacks.prompt_grid.every_n_epochs=10", fast=False))
    with open(run / "csv" / "metrics.csv", newline="") as file:
        val_ce = {int(row["epoch"]): float(row["val/ce"]) for row in csv.DictReader(file) if row.get("val/ce")}
    assert len(val_ce) == 4
    best = read_checkpoint(run / "checkpoints" / "best_val_ce.ckpt")
    assert best["epoch"] == min(val_ce, key=val_ce.get)
    assert [p.name for p in (run / "checkpoints").glob("best_val_ce*")] == ["best_val_ce.ckpt"]


def test_a_run_on_cached_captions_measured_by_a_scorer_warns_of_no_read_only_array(tmp_path):
    """The uint8 cache is memory-mapped read-only: tensors made from it must not warn that they are not writable."""
    import warnings

    from parti_exp.testing.shapes import write_shapes_folder

    folder = write_shapes_folder(tmp_path / "shapes", n=24, size=16)
    data = ["data=captions", f"data.path={folder}", "data.channels=1", "data.img_size=16", "data.batch_size=4",
            "data.val_fraction=0.25"]
    scorer = ["model=contrastive", "model.image_encoder.width=8", "model.image_encoder.dim=16",
              "model.text_encoder.dim=16", "model.embed_dim=16", "trainer.max_epochs=1", "trainer.accelerator=cpu",
              "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "metrics=none"]
    train(compose_train(tmp_path / "scorer", *scorer, *data, fast=False))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(compose_train(tmp_path, *PARTI_ANY_DATA, *data, f"model.tokenizer_ckpt={OLD_TOKENIZER}",
                            f"callbacks.text_image_metrics.scorer_ckpt={tmp_path / 'scorer' / 'run'}",
                            "callbacks.text_image_metrics.num_images=6", "trainer.max_epochs=1", fast=False))
    assert not [str(w.message) for w in caught if "not writable" in str(w.message)]
    assert (tmp_path / "run" / "checkpoints" / "best_val_ce.ckpt").is_file()
