"""evaluate without network: in the image space of a contrastive scorer trained here (scorer_ckpt=) or of a digit
classifier a run cached (classifier_ckpt=), each number named with its space; metrics=none and a classifier without
data refused with what works; a sample folder read as its manifest lists it (without its grid)."""

from __future__ import annotations

import json
import re
import urllib.error

import numpy as np
import pytest
import torch
from checkpoint_helpers import OLD_STYLEGAN
from hydra_compose import compose_export, compose_sample, compose_train, run_entry_point
from PIL import Image

from parti_exp.evaluate import evaluate, report
from parti_exp.inference.export import export_model
from parti_exp.metrics.digit_classifier import load_or_train_classifier
from parti_exp.sample import sample
from parti_exp.train import train

SCORER = [  # experiment=contrastive_digits (16 px), narrower and shorter
    "experiment=contrastive_digits", "trainer.max_epochs=1", "trainer.limit_train_batches=6",
    "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
    "model.image_encoder.width=8", "model.image_encoder.dim=32", "model.text_encoder.dim=32", "model.embed_dim=32",
    "model.text_tokenizer.vocab_size=300",
]


@pytest.fixture(scope="module")
def digit_scorer(tmp_path_factory):
    """The run directory of a small contrastive scorer of the 16 px digits."""
    root = tmp_path_factory.mktemp("scorer")
    train(compose_train(root, *SCORER, fast=False))
    return root / "run"


@pytest.fixture
def classifier_file(digits, metrics_cache):
    return load_or_train_classifier(digits.train_set, digits.val_set, 10, metrics_cache, torch.device("cpu"),
                                    dataset=digits.name).path


def test_folders_in_a_scorers_space_offline(evaluate_cfg, digit_folders, digit_scorer, tmp_path):
    real, fake = digit_folders
    cfg = evaluate_cfg("metrics=scorer", f"scorer_ckpt={digit_scorer}", f"real_dir={real}", f"fake_dir={fake}",
                       "device=cpu")
    result = evaluate(cfg, tmp_path / "out")
    assert str(digit_scorer) in result["feature_space"] and "contrastive scorer" in result["feature_space"]
    names = {"fid_scorer", "kid_scorer", "precision_scorer", "recall_scorer", "density_scorer", "coverage_scorer"}
    assert names <= set(result) and not any(key.startswith("is") for key in result)  # no classes: no IS
    assert result["fid_scorer"] > 0.5 and result["num_real"] == result["num_fake"] == 10
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["feature_space"] == result["feature_space"]
    shown = report(result)  # what the command prints
    assert f"measured in the image embeddings of the contrastive scorer {digit_scorer}:" in shown
    assert re.search(r"\n  fid_scorer +\d", shown)
    same = evaluate(evaluate_cfg("metrics=scorer", f"scorer_ckpt={digit_scorer}", f"real_dir={real}",
                                 f"fake_dir={real}", "device=cpu"), tmp_path / "same")
    assert same["fid_scorer"] == pytest.approx(0, abs=1e-3) and same["precision_scorer"] == same["recall_scorer"] == 1


def test_images_of_another_size_than_the_scorers_are_refused(evaluate_cfg, digit_scorer, tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(np.full((32, 32), 40 * i, np.uint8)).save(folder / f"{i}.png")
    cfg = evaluate_cfg("metrics=scorer", f"scorer_ckpt={digit_scorer}", f"real_dir={folder}", f"fake_dir={folder}")
    with pytest.raises(ValueError, match=r"the images are 1 x 32 x 32 .* the scorer reads 1 x 16 x 16"):
        evaluate(cfg, tmp_path / "out")


def test_folders_in_a_cached_classifiers_space_need_no_data(evaluate_cfg, digit_folders, classifier_file, tmp_path):
    real, fake = digit_folders
    result = evaluate(evaluate_cfg("metrics=classifier", f"classifier_ckpt={classifier_file}", f"real_dir={real}",
                                   f"fake_dir={fake}", "device=cpu"), tmp_path / "out")
    assert str(classifier_file) in result["feature_space"]
    assert result["fid_clf"] > 0 and 0 <= result["coverage_clf"] <= 1 and "min_class_share_clf" in result


def test_a_sample_folder_is_read_without_its_grid(evaluate_cfg, digit_folders, classifier_file, tmp_path):
    out = tmp_path / "samples"
    sample(compose_sample(tmp_path, f"ckpt_path={OLD_STYLEGAN}", "n=12", "device=cpu"), out)
    assert (out / "grid.png").is_file()  # a sheet of another size beside the samples
    real, _ = digit_folders
    result = evaluate(evaluate_cfg("metrics=classifier", f"classifier_ckpt={classifier_file}", f"real_dir={real}",
                                   f"fake_dir={out}", "device=cpu"), tmp_path / "out")
    assert result["num_fake"] == 12


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["metrics=none"], r"metrics=none: evaluate measures images in a feature space; choose one, "
                           r"metrics=inception .*metrics=scorer scorer_ckpt=.*metrics=classifier"),
        (["metrics=classifier"], r"metrics=classifier trains its classifier on a labelled dataset's train split: "
                                 r"give that dataset .*metrics.classifier_ckpt="),
        (["metrics=scorer"], r"metrics=scorer measures in the image space of a contrastive scorer: set "
                             r"metrics.scorer_ckpt=.*scorer_ckpt="),
    ],
    ids=["none", "classifier_without_data", "scorer_without_checkpoint"],
)
def test_what_cannot_measure_says_what_can(evaluate_cfg, digit_folders, tmp_path, overrides, expected):
    real, fake = digit_folders
    with pytest.raises(ValueError, match=expected):
        evaluate(evaluate_cfg(*overrides, f"real_dir={real}", f"fake_dir={fake}"), tmp_path / "out")


def test_inception_offline_advises_what_evaluate_can_do(evaluate_cfg, digit_folders, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    real, fake = digit_folders
    with pytest.raises(FileNotFoundError) as error:
        evaluate(evaluate_cfg(f"real_dir={real}", f"fake_dir={fake}"), tmp_path / "out")
    message = str(error.value)
    assert "InceptionV3 weights" in message and "metrics=scorer scorer_ckpt=" in message
    assert "train" not in message.replace("trained", "")  # advice for evaluate, not for a training run


def test_the_cli_prints_a_refusal_as_its_message_and_leaves_no_run_directory(digit_folders, tmp_path):
    real, fake = digit_folders
    run_dir = tmp_path / "eval_run"
    done = run_entry_point("parti_exp.evaluate", "metrics=none", f"real_dir={real}", f"fake_dir={fake}",
                           f"hydra.run.dir={run_dir}", cwd=tmp_path, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "evaluate measures images in a feature space" in done.stderr
    assert not run_dir.exists()


def test_a_model_folder_is_measured_as_its_checkpoint(evaluate_cfg, classifier_file, tmp_path):
    folder = export_model(compose_export(tmp_path, f"ckpt_path={OLD_STYLEGAN}", f"out_dir={tmp_path / 'folder'}",
                                         "n=4"), torch.device("cpu"))
    overrides = ["metrics=classifier", f"classifier_ckpt={classifier_file}", "metrics.num_fake=64", "device=cpu"]
    results = [evaluate(evaluate_cfg(f"ckpt_path={source}", *overrides), tmp_path / name, overrides=overrides)
               for source, name in ((OLD_STYLEGAN, "from_ckpt"), (folder, "from_folder"))]
    for result in results:
        result.pop("fake")
    assert results[0] == results[1] and results[0]["num_fake"] == 64 and results[0]["fid_clf"] > 0
