"""The contrastive scorer (`model=contrastive`): its loss, its metrics, training on the digits, its checkpoint, and
what uses it: reranking in the sample CLI and the text-image metrics of a text-to-image run."""

import math
import shutil

import numpy as np
import pytest
import torch
from hydra_compose import TINY_VQGAN, BeforeFit, compose_sample, compose_train
from PIL import Image
from test_text_to_image_training import PARTI

from parti_exp.builders import build_datamodule, build_module
from parti_exp.data.base import to_signed_unit
from parti_exp.inference.rerank import ContrastiveScorer
from parti_exp.metrics.text_image import clip_score, ids_by_caption, r_precision, retrieval_top1
from parti_exp.models.text_to_image.contrastive import ContrastiveModule, load_contrastive
from parti_exp.models.text_to_image.info_nce import symmetric_info_nce
from parti_exp.nets.dual_encoder import DualEncoder, PooledTextEncoder
from parti_exp.nets.image_encoder import ImageEncoder
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.runtime.images import to_uint8
from parti_exp.sample import sample
from parti_exp.train import train

CONTRASTIVE = [
    "experiment=contrastive_digits",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def unit(rows):
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


# InfoNCE


def test_info_nce_matches_a_hand_computation():
    images = unit([[1.0, 0.0], [0.0, 1.0]])
    texts = unit([[1.0, 0.0], [0.6, 0.8]])
    # logits = 10 * [[1, 0.6], [0, 0.8]]: each cross-entropy term is log(1 + e^-(margin to the other logit)).
    image_to_text = (math.log1p(math.exp(-4)) + math.log1p(math.exp(-8))) / 2
    text_to_image = (math.log1p(math.exp(-10)) + math.log1p(math.exp(-2))) / 2
    loss = symmetric_info_nce(images, texts, torch.tensor(10.0))
    assert float(loss) == pytest.approx((image_to_text + text_to_image) / 2, rel=1e-6)


def test_info_nce_is_symmetric_in_images_and_texts():
    images, texts = unit(torch.randn(6, 8).tolist()), unit(torch.randn(6, 8).tolist())
    scale = torch.tensor(7.0)
    both = float(symmetric_info_nce(images, texts, scale))
    assert both == pytest.approx(float(symmetric_info_nce(texts, images, scale)))
    # Each direction alone is not symmetric: the loss averages both.
    logits = scale * images @ texts.T
    targets = torch.arange(6)
    one_way = torch.nn.functional.cross_entropy(logits, targets)
    other_way = torch.nn.functional.cross_entropy(logits.T, targets)
    assert float(one_way) != pytest.approx(float(other_way))
    assert both == pytest.approx(float(one_way + other_way) / 2)


def tiny_dual_encoder(**kwargs) -> DualEncoder:
    text = PooledTextEncoder(text_vocab_size=20, max_text_len=6, dim=16, depth=1, heads=2)
    return DualEncoder(ImageEncoder(8, 1, width=4, dim=16), text, embed_dim=8, **kwargs)


def test_temperature_is_learned_in_log_space_and_clamped():
    net = tiny_dual_encoder(temperature=0.07, max_logit_scale=100.0)
    assert net.logit_scale.exp().item() == pytest.approx(1 / 0.07)
    images, ids, mask = torch.randn(4, 1, 8, 8), torch.randint(20, (4, 6)), torch.ones(4, 6, dtype=torch.bool)
    loss = symmetric_info_nce(net.embed_images(images), net.embed_text(ids, mask), net.logit_scale.exp())
    loss.backward()
    assert net.logit_scale.grad is not None and float(net.logit_scale.grad) != 0.0
    with torch.no_grad():
        net.logit_scale.fill_(math.log(1000.0))
    net.clamp_logit_scale_()
    assert net.logit_scale.exp().item() == pytest.approx(100.0)
    with pytest.raises(ValueError, match=r"model.temperature must be in \[1 / max_logit_scale, 1\] = \[0.01, 1\]"):
        tiny_dual_encoder(temperature=0.001)


def test_training_clamps_the_logit_scale_after_each_step(tmp_path):
    def too_hot(module):
        with torch.no_grad():
            module.dual_encoder.logit_scale.fill_(math.log(1000.0))

    run = train(compose_train(tmp_path, *CONTRASTIVE, "trainer.fast_dev_run=true", fast=False),
                extra_callbacks=[BeforeFit(too_hot)])
    assert run.module.dual_encoder.logit_scale.exp().item() == pytest.approx(100.0, rel=1e-5)
    # The step itself ran at the unclamped scale, as logged.
    assert float(run.trainer.callback_metrics["train/logit_scale"]) == pytest.approx(1000.0, rel=1e-4)


# Metrics on embeddings


def test_clip_score_is_100_for_identical_embeddings_and_clamped_at_zero():
    same = unit(torch.randn(5, 8).tolist())
    assert clip_score(same, same) == pytest.approx(100.0)
    assert clip_score(same, -same) == 0.0
    # cos = 0.6 and cos = 0 -> mean of 60 and 0.
    assert clip_score(unit([[1, 0], [1, 0]]), unit([[0.6, 0.8], [0, 1]])) == pytest.approx(30.0)


def test_r_precision_ranks_against_other_captions_only():
    # Images 0 and 1 share a caption (label data): they are not each other's distractors, so all three are hits.
    images = unit([[1, 0], [1, 0], [0, 1]])
    texts = unit([[1, 0], [1, 0], [0, 1]])
    assert r_precision(images, texts, torch.tensor([0, 0, 1])) == 1.0
    # With distinct captions the two identical pairs tie, and a tie is a miss.
    assert r_precision(images, texts, torch.tensor([0, 1, 2])) == pytest.approx(1 / 3)
    # Image 2 is nearer caption 0 than its own.
    tilted = unit([[1, 0], [1, 0], [1, 0.5]])
    assert r_precision(tilted, texts, torch.tensor([0, 0, 1])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="captions that differ"):
        r_precision(images, texts, torch.tensor([4, 4, 4]))


def test_r_precision_of_unrelated_embeddings_is_near_chance():
    generator = torch.Generator().manual_seed(0)
    images = torch.nn.functional.normalize(torch.randn(1000, 16, generator=generator), dim=-1)
    texts = torch.nn.functional.normalize(torch.randn(1000, 16, generator=generator), dim=-1)
    value = r_precision(images, texts, torch.arange(1000), 99, torch.Generator().manual_seed(1))
    assert 0.0 <= value <= 0.03  # chance: 1 / 100


def test_retrieval_top1_counts_the_own_caption_as_nearest_among_distinct_captions():
    images = unit([[1, 0], [0.9, 0.1], [0, 1], [0.8, 0.6]])
    texts = unit([[1, 0], [1, 0], [0, 1], [0, 1]])
    # Captions 0 and 1 are the same string; image 3 is nearer caption 0 than its own (caption 2).
    assert retrieval_top1(images, texts, ids_by_caption(["a", "a", "b", "b"])) == pytest.approx(3 / 4)
    assert ids_by_caption(["x", "y", "x"]).tolist() == [0, 1, 0]


# Training on the digits, and the checkpoint


@pytest.fixture(scope="module")
def scorer_run(tmp_path_factory):
    """The digits preset (16 px) for 2 epochs: the trained module and its checkpoint."""
    tmp = tmp_path_factory.mktemp("contrastive")
    cfg = compose_train(tmp, *CONTRASTIVE, "trainer.max_epochs=2", fast=False)
    initial = build_module(cfg).dual_encoder.logit_scale.item()
    run = train(cfg)
    return run, tmp / "run" / "checkpoints" / "last.ckpt", initial, tmp


@pytest.mark.slow
def test_r_precision_of_real_digits_is_far_above_chance_after_two_epochs(scorer_run):
    run, ckpt, initial_scale, _ = scorer_run
    metrics = run.trainer.callback_metrics
    # Label captions: the 99 distractors are the other nine classes' captions, so chance is 0.1.
    assert float(metrics["val/r_precision"]) > 0.5
    assert float(metrics["val/retrieval_top1"]) > 0.5
    assert float(metrics["train/contrastive_loss"]) < math.log(64)  # below the loss of a batch of 64 at chance
    assert run.module.dual_encoder.logit_scale.item() != initial_scale  # the temperature is learned
    assert ckpt.is_file()


@pytest.mark.slow
def test_the_scorer_prefers_the_images_of_the_captioned_digit(scorer_run):
    run, ckpt, _, _ = scorer_run
    scorer = ContrastiveScorer(load_contrastive(ckpt))
    val = run.datamodule.val_set
    images, labels = to_signed_unit(torch.from_numpy(np.asarray(val.images))), torch.as_tensor(val.labels)
    for digit, word in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")):
        scores = scorer(images, f"a handwritten {word}")
        mean_per_class = torch.stack([scores[labels == c].mean() for c in range(10)])
        assert int(mean_per_class.argmax()) == digit, (word, mean_per_class)
        assert -1.0 <= float(scores.min()) and float(scores.max()) <= 1.0  # cosine similarities


@pytest.mark.slow
def test_the_checkpoint_scores_on_its_own_as_the_trained_module_did(scorer_run):
    run, ckpt, _, tmp = scorer_run
    stored = read_checkpoint(ckpt)["text_tokenizer"]
    assert stored["kind"] == "bpe"
    # The tokenizer comes from the checkpoint, not from the cache it was trained into.
    shutil.rmtree(tmp / "data" / ".cache" / "tokenizers")
    loaded = load_contrastive(ckpt)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    images = to_signed_unit(torch.from_numpy(np.asarray(run.datamodule.val_set.images[:8])))
    captions = ["a handwritten seven", "the digit 2", "a zebra in Zürich"]
    trained = run.module.cpu()
    torch.testing.assert_close(loaded.embed_images(images), trained.embed_images(images))
    torch.testing.assert_close(loaded.embed_captions(captions), trained.embed_captions(captions))
    with pytest.raises(ValueError, match=r"scorer_ckpt=\S+ scores 1 x 16 x 16 images, these are 1 x 32 x 32"):
        loaded.check_images_fit(32, 1, f"scorer_ckpt={ckpt}")


def test_load_contrastive_names_a_missing_or_foreign_checkpoint(tmp_path):
    missing = r"scorer_ckpt=/nowhere.ckpt does not exist; give a .ckpt file or a run directory.*model=contrastive"
    with pytest.raises(FileNotFoundError, match=missing):
        load_contrastive("/nowhere.ckpt")
    train(compose_train(tmp_path, "trainer.limit_train_batches=1", "trainer.limit_val_batches=1"))
    with pytest.raises(ValueError, match=r"holds a GANModule, not a contrastive scorer"):
        load_contrastive(tmp_path / "run" / "checkpoints" / "last.ckpt")


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(ValueError, match="model.text_encoder.pool must be one of end, mean, got 'max'"):
        build_module(compose_train(tmp_path, *CONTRASTIVE, "model.text_encoder.pool=max", fast=False))
    with pytest.raises(ValueError, match="model.r_precision_distractors must be an integer >= 1, got 0"):
        build_module(compose_train(tmp_path, *CONTRASTIVE, "model.r_precision_distractors=0", fast=False))
    with pytest.raises(ValueError, match=r"model.hard_negatives takes enabled and mirrors, got \['enable', "):
        build_module(compose_train(tmp_path, *CONTRASTIVE, "+model.hard_negatives.enable=true", fast=False))
    with pytest.raises(ValueError, match="model.hard_negatives.mirrors: each entry is two single words"):
        build_module(compose_train(tmp_path, *CONTRASTIVE, "model.hard_negatives.enabled=true",
                                   "model.hard_negatives.mirrors=[[left]]", fast=False))
    assert build_module(compose_train(tmp_path, *CONTRASTIVE, fast=False)).hard_negatives is None  # off by default
    scenes = build_module(compose_train(tmp_path, "experiment=contrastive_scenes", fast=False))
    assert scenes.hard_negatives.edits("a 3 over a 7") == ["a 7 over a 3", "a 3 under a 7"]


def test_the_default_command_composes_without_image_metrics(tmp_path):
    cfg = compose_train(tmp_path, "model=contrastive", "data=digits", fast=False)
    assert "_target_" not in cfg.metrics  # FID of a model that makes no images cannot run
    assert cfg.callbacks.sample_grid is None
    module = build_module(cfg)
    assert isinstance(module, ContrastiveModule)
    assert module.dual_encoder.image_encoder.img_size == 16 == build_datamodule(cfg).img_size


# What uses it: reranking and the metrics of a text-to-image run


@pytest.fixture(scope="module")
def parti_ckpt(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parti")
    train(compose_train(tmp / "tokenizer", *TINY_VQGAN, "trainer.limit_train_batches=3"))
    tokenizer = tmp / "tokenizer" / "run" / "checkpoints" / "last.ckpt"
    train(compose_train(tmp, *PARTI, f"model.tokenizer_ckpt={tokenizer}", "trainer.max_epochs=1",
                        "trainer.limit_train_batches=2", "callbacks.caption_accuracy=null", fast=False))
    return tmp / "run" / "checkpoints" / "last.ckpt", tokenizer


def png(path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path)))


@pytest.mark.slow
def test_sample_cli_keeps_the_candidate_the_contrastive_scorer_likes_best(tmp_path, parti_ckpt, scorer_run):
    ckpt, _ = parti_ckpt
    scorer_ckpt = scorer_run[1]
    prompt = "a handwritten seven"
    cfg = compose_sample(tmp_path, f"ckpt_path={ckpt}", f'prompts=["{prompt}"]', "n=3", "n_candidates=4",
                         f"scorer_ckpt={scorer_ckpt}", "device=cpu")
    paths = sample(cfg, tmp_path / "out")
    # The same candidates again (the CLI draws all 12 in one call from its seed), scored by hand.
    parti = module_from_checkpoint(read_checkpoint(ckpt))[0].eval()
    candidates = parti.sample_images([prompt] * 12, generator=torch.Generator().manual_seed(cfg.seed))
    scores = ContrastiveScorer(load_contrastive(scorer_ckpt))(candidates, prompt).view(3, 4)
    best = scores.argmax(dim=1)
    assert best.tolist() != [0, 0, 0], "a test that reranking changes something needs other seeds"
    chosen = candidates.view(3, 4, *candidates.shape[1:])[torch.arange(3), best]
    expected = to_uint8(chosen)[:, 0]
    saved = torch.stack([png(path) for path in sorted(paths)])
    assert torch.equal(saved, expected)
    with pytest.raises(ValueError, match=r"scorer_ckpt is for reranking: set n_candidates > 1"):
        sample(compose_sample(tmp_path, f"ckpt_path={ckpt}", f'prompts=["{prompt}"]', f"scorer_ckpt={scorer_ckpt}"),
               tmp_path / "out2")
    with pytest.raises(ValueError, match=r"is a contrastive scorer \(model=contrastive\): it scores images"):
        sample(compose_sample(tmp_path, f"ckpt_path={scorer_ckpt}", "n=1"), tmp_path / "out3")


@pytest.mark.slow
def test_text_to_image_run_logs_clip_score_and_r_precision_with_their_real_ceiling(tmp_path, parti_ckpt, scorer_run):
    _, tokenizer = parti_ckpt
    scorer_ckpt = scorer_run[1]
    run = train(compose_train(tmp_path, *PARTI, f"model.tokenizer_ckpt={tokenizer}", "trainer.max_epochs=1",
                              "trainer.limit_train_batches=2", "callbacks.caption_accuracy=null",
                              f"callbacks.text_image_metrics.scorer_ckpt={scorer_ckpt}",
                              "callbacks.text_image_metrics.every_n_epochs=1", fast=False))
    logged = {key: float(value) for key, value in run.trainer.callback_metrics.items()}
    # The real ceiling, measured by hand on the same 100 validation images, captions and distractors.
    scorer = load_contrastive(scorer_ckpt)
    val = run.datamodule.val_set
    captions = run.datamodule.caption_source().first(torch.as_tensor(val.labels[:100]))
    images = scorer.embed_images(to_signed_unit(torch.from_numpy(np.asarray(val.images[:100]))))
    texts = scorer.embed_captions(captions)
    expected = r_precision(images, texts, ids_by_caption(captions), 99, torch.Generator().manual_seed(0))
    assert logged["val/r_precision_real"] == pytest.approx(expected)
    assert logged["val/r_precision_real"] > 0.5
    assert logged["val/clip_score_real"] == pytest.approx(clip_score(images, texts), rel=1e-5)
    # Two steps of text-to-image training draw no readable digit: far below the ceiling.
    assert 0.0 <= logged["val/r_precision"] < logged["val/r_precision_real"]
    assert 0.0 <= logged["val/clip_score"] <= 100.0


def test_text_image_metrics_are_off_without_a_scorer_and_refuse_a_mismatched_one(tmp_path, parti_ckpt):
    ckpt, tokenizer = parti_ckpt
    cfg = compose_train(tmp_path, *PARTI, f"model.tokenizer_ckpt={tokenizer}", fast=False)
    assert cfg.callbacks.text_image_metrics.scorer_ckpt is None
    run = train(compose_train(tmp_path, *PARTI, f"model.tokenizer_ckpt={tokenizer}", "trainer.fast_dev_run=true",
                              "callbacks.caption_accuracy=null", fast=False))
    assert not any(key.startswith(("val/clip_score", "val/r_precision")) for key in run.trainer.callback_metrics)
    # A text-to-image checkpoint is no scorer.
    with pytest.raises(ValueError, match=r"callbacks.text_image_metrics.scorer_ckpt=\S+ holds a TextToImageModule"):
        train(compose_train(tmp_path, *PARTI, f"model.tokenizer_ckpt={tokenizer}", "trainer.fast_dev_run=true",
                            f"callbacks.text_image_metrics.scorer_ckpt={ckpt}", fast=False))


def test_trains_and_scores_on_a_captioned_folder_without_labels(tmp_path):
    folder = tmp_path / "captioned"
    folder.mkdir()
    for i in range(12):
        Image.new("L", (16, 16), 20 * i).save(folder / f"img_{i}.png")
        (folder / f"img_{i}.txt").write_text(f"a grey square of shade {i}\na flat tile number {i}\n")
    data = ["data=captions", f"data.path={folder}", "data.channels=1", "data.batch_size=4", "data.val_fraction=0.25"]
    run = train(compose_train(tmp_path, *CONTRASTIVE, *data, "trainer.max_epochs=1", fast=False))
    # Three validation images with distinct captions: each is ranked against the two others' captions.
    assert 0.0 <= run.metrics["val/r_precision"] <= 1.0 and math.isfinite(run.metrics["val/contrastive_loss"])
    scorer = ContrastiveScorer(load_contrastive(tmp_path / "run" / "checkpoints" / "last.ckpt"))
    scores = scorer(torch.zeros(3, 1, 16, 16), "a red bus parked on a street")  # words the captions never had
    assert scores.shape == (3,) and bool(((scores >= -1) & (scores <= 1)).all())
