"""Code shards (``python -m parti_exp.shards encode``) and ``data=webdataset model.code_cache=true``: each sample gains
its tokenizer's codes, a stage-2 run on them ends where a run on the image shards ends and resumes mid-epoch exactly,
and shards without codes, or with another tokenizer's, are refused."""

import io
import json
import os
import signal

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra_compose import TINY_TRANSFORMER, TINY_VQGAN, compose_train, tiny_tokenizer
from PIL import Image

from parti_exp import CONF_DIR
from parti_exp.data import DigitsDataModule
from parti_exp.data.shard_plan import Segment, list_shards
from parti_exp.data.shard_samples import segment_samples
from parti_exp.data.shard_writer import write_split
from parti_exp.errors import ConfigError
from parti_exp.models.text_to_image.token_model import ImageTokenModule, load_image_tokenizer
from parti_exp.runtime.checkpoints import read_checkpoint
from parti_exp.shards import encode
from parti_exp.train import train

PARTI = [
    "model=parti",
    "metrics=none",
    "trainer.accelerator=cpu",
    "trainer.deterministic=true",
    "trainer.max_epochs=2",
    "trainer.limit_val_batches=1",
    "data.batch_size=16",
    *TINY_TRANSFORMER,
    "callbacks.prompt_grid.per_prompt=1",
    "callbacks.model_checkpoint.every_n_g_steps=2",
]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Digits at 16 px as image shards (train: 96 of them in 2 shards, val), a tiny tokenizer, and the train shards
    encoded by it."""
    tmp = tmp_path_factory.mktemp("code_shards")
    tokenizer = tiny_tokenizer(tmp_path_factory)
    digits = DigitsDataModule(img_size=16)
    digits.setup()
    digits.train_set.images, digits.train_set.labels = digits.train_set.images[:96], digits.train_set.labels[:96]
    write_split(digits, "train", tmp / "images" / "train", maxcount=50, image_format="png")
    write_split(digits, "val", tmp / "images" / "val", maxcount=100, image_format="png")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("shards", ["data=webdataset", f"data.urls={tmp / 'images' / 'train'}", "data.img_size=16",
                                 "data.channels=1", f"tokenizer_ckpt={tokenizer}", f"out_dir={tmp / 'codes'}",
                                 "device=cpu"])
    encode(cfg)
    return tmp, tokenizer


def test_each_sample_keeps_its_members_and_gains_its_codes(shards):
    tmp, tokenizer_ckpt = shards
    assert [p.rsplit("/", 1)[1] for p in list_shards(str(tmp / "codes"))] == ["00000.tar", "00001.tar"]
    tokenizer, _ = load_image_tokenizer(str(tokenizer_ckpt))
    tokenizer.eval()
    originals = list(segment_samples(Segment(str(tmp / "images" / "train" / "00001.tar"), 0, 46)))
    encoded = list(segment_samples(Segment(str(tmp / "codes" / "00001.tar"), 0, 46)))
    assert [s["__key__"] for s in encoded] == [s["__key__"] for s in originals]
    for original, sample in zip(originals[:3], encoded[:3]):
        assert all(sample[name] == value for name, value in original.items() if not name.startswith("__"))
        codes = np.load(io.BytesIO(sample["codes.npy"]), allow_pickle=False)
        image = torch.from_numpy(np.asarray(Image.open(io.BytesIO(sample["png"]))))
        expected = tokenizer.encode(image[None, None].float() / 127.5 - 1)
        assert codes.shape == (1, *tokenizer.token_grid) and torch.equal(torch.from_numpy(codes).long(), expected)
        assert json.loads(sample["codes.json"])["views"] == 1


def data(folder) -> list[str]:
    """``folder`` for training, the image shards' val split for validation (in memory, encoded there)."""
    val = folder.parent / "val" if folder.name == "train" else folder.parent / "images" / "val"
    return ["data=webdataset", f"data.urls={folder}", f"data.val_urls={val}",
            "data.img_size=16", "data.channels=1", "data.val_samples=16", "data.reference_samples=32"]


@pytest.mark.slow
def test_training_on_code_shards_equals_training_on_the_images_and_resumes_exactly(shards, tmp_path, monkeypatch):
    tmp, tokenizer = shards

    def run(name: str, folder, *extra: str) -> dict:
        train(compose_train(tmp_path, *PARTI, *data(folder), f"model.tokenizer_ckpt={tokenizer}",
                            f"paths.output_dir={tmp_path / name}", *extra, fast=False))
        return read_checkpoint(tmp_path / name / "checkpoints" / "last.ckpt")

    def same(a: dict, b: dict) -> None:
        assert a["global_step"] == b["global_step"] == 12  # 2 epochs of 6 batches of 16
        for key, tensor in a["state_dict"].items():
            torch.testing.assert_close(tensor, b["state_dict"][key], rtol=0, atol=1e-6, msg=key)

    images = run("images", tmp / "images" / "train")
    codes = run("codes", tmp / "codes", "model.code_cache=true")
    same(images, codes)

    original = ImageTokenModule.training_step

    def training_step(self, batch, batch_idx):
        loss = original(self, batch, batch_idx)
        if self.global_step == 8:  # batch 3 of epoch 1
            os.kill(os.getpid(), signal.SIGUSR1)
        return loss

    with monkeypatch.context() as patch:
        patch.setattr(ImageTokenModule, "training_step", training_step)
        assert run("cut", tmp / "codes", "model.code_cache=true")["global_step"] == 9
    same(codes, run("cut", tmp / "codes", "model.code_cache=true", "ckpt_path=last"))


def test_shards_without_codes_or_with_another_tokenizers_are_refused(shards, tmp_path):
    tmp, tokenizer = shards
    common = [*PARTI, "trainer.fast_dev_run=true", "model.code_cache=true", f"model.tokenizer_ckpt={tokenizer}"]
    with pytest.raises(ConfigError, match="its first sample has no codes.npy; write code shards with"):
        train(compose_train(tmp_path, *common, *data(tmp / "images" / "train"), fast=False))
    other = tmp_path / "other"
    train(compose_train(other, *TINY_VQGAN, "trainer.limit_train_batches=2", "seed=7"))
    with pytest.raises(ConfigError, match="holds the codes of another image tokenizer"):
        train(compose_train(tmp_path, *PARTI, "trainer.fast_dev_run=true", "model.code_cache=true",
                            *data(tmp / "codes"), f"model.tokenizer_ckpt={other / 'run' / 'checkpoints' / 'last.ckpt'}",
                            fast=False))


def test_the_contrastive_scorer_trains_on_streamed_captions(shards, tmp_path):
    tmp, _ = shards
    run = train(compose_train(tmp_path, "model=contrastive", *data(tmp / "images" / "train"), "metrics=none",
                              "trainer.accelerator=cpu", "trainer.fast_dev_run=true", "data.batch_size=16", fast=False))
    metrics = run.trainer.callback_metrics
    # InfoNCE over a batch of 16 starts near log(16) = 2.77; the streamed validation captions are ranked.
    assert abs(float(metrics["train/contrastive_loss"]) - 2.77) < 0.6
    assert 0.0 <= float(metrics["val/r_precision"]) <= 1.0


def test_encode_needs_a_tokenizer_and_another_folder(shards):
    tmp, tokenizer = shards
    images = tmp / "images" / "train"

    def composed(*overrides: str):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("shards", ["data=webdataset", f"data.urls={images}", "data.img_size=16", "data.channels=1",
                                      "device=cpu", *overrides])

    with pytest.raises(ConfigError, match="tokenizer_ckpt must name the stage-1 checkpoint"):
        encode(composed(f"out_dir={tmp / 'elsewhere'}"))
    with pytest.raises(ConfigError, match="holds the input shard .*00000.tar: write the code shards elsewhere"):
        encode(composed(f"out_dir={images}", f"tokenizer_ckpt={tokenizer}"))
    assert sorted(p.name for p in images.glob("*.tar")) == ["00000.tar", "00001.tar"]
