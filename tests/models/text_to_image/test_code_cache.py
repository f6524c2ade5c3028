"""``model.code_cache=true``: stage 2 trains on codes encoded once instead of encoding every batch. The codes are the
tokenizer's (mirrors included), a run with the cache ends where a run without it ends, it resumes mid-epoch exactly,
and a different tokenizer or different images never read another's entry."""

import os
import signal

import numpy as np
import pytest
import torch
from hydra_compose import TINY_TRANSFORMER, compose_train, tiny_tokenizer

from parti_exp.data.base import ImageDataModule, UInt8ImageDataset, random_hflip
from parti_exp.data.image_codes import CodeRequest, cached_codes, pick_views, weights_key
from parti_exp.models.text_to_image.token_model import ImageTokenModule, load_image_tokenizer
from parti_exp.runtime.checkpoints import read_checkpoint
from parti_exp.train import train

PARTI = [
    "model=parti",
    "data.img_size=16",
    "metrics=none",
    "trainer.accelerator=cpu",
    "trainer.deterministic=true",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=1",
    "data.batch_size=16",
    *TINY_TRANSFORMER,
    "callbacks.prompt_grid.per_prompt=1",
    "callbacks.caption_accuracy.per_class=1",
    "callbacks.model_checkpoint.every_n_g_steps=2",
]


@pytest.fixture(scope="module")
def tokenizer_ckpt(tmp_path_factory):
    return tiny_tokenizer(tmp_path_factory)


class Mirrored(ImageDataModule):
    """In-memory images served with random left-right flips, as a data module with ``data.hflip=true`` serves them."""

    name = "mirrored"

    def __init__(self, images: np.ndarray) -> None:
        super().__init__(img_size=images.shape[-1], channels=images.shape[1], num_classes=1, batch_size=4, hflip=True)
        self.images = images

    def load_split(self, split: str) -> UInt8ImageDataset:
        return UInt8ImageDataset(self.images, np.arange(len(self.images)))


def request(tokenizer, directory) -> CodeRequest:
    return CodeRequest(tokenizer.encode, weights_key(tokenizer), tokenizer.codebook_size, directory,
                       torch.device("cpu"), batch_size=3)


def test_served_codes_are_the_tokenizers_and_flips_match_flipping_pixels(tokenizer_ckpt, tmp_path):
    tokenizer, _ = load_image_tokenizer(str(tokenizer_ckpt))
    tokenizer.eval()
    images = np.random.default_rng(0).integers(0, 256, (10, 1, 16, 16), dtype=np.uint8)
    data = Mirrored(images)
    data.serve_codes(request(tokenizer, tmp_path))
    codes, labels = data._code_sets["train"].__getitems__(list(range(10)))
    pixels = torch.from_numpy(images).float() / 127.5 - 1
    assert codes.shape == (10, 2, *tokenizer.token_grid)
    assert torch.equal(codes[:, 0].long(), tokenizer.encode(pixels))
    assert torch.equal(codes[:, 1].long(), tokenizer.encode(pixels.flip(-1)))
    assert data._code_sets["val"].codes.shape[1] == 1, "validation is never flipped: one view"
    assert not torch.equal(codes[:, 0], codes[:, 1]), "random images and their mirrors have different codes"

    # A training batch takes a random half of its mirrors, with the coins random_hflip would have drawn.
    torch.manual_seed(3)
    picked = pick_views(codes, training=True, mirrored=True)
    torch.manual_seed(3)
    flipped = random_hflip(pixels)
    assert torch.equal(picked, tokenizer.encode(flipped))
    assert torch.equal(pick_views(codes, training=False, mirrored=True), codes[:, 0].long())


def test_a_stale_entry_is_never_read(tokenizer_ckpt, tmp_path):
    tokenizer, _ = load_image_tokenizer(str(tokenizer_ckpt))
    tokenizer.eval()  # as the token models hold it: a training-mode forward would move its codebook
    images = np.random.default_rng(0).integers(0, 256, (6, 1, 16, 16), dtype=np.uint8)
    labels = np.arange(6)
    first = cached_codes("d", "train", images, labels, request(tokenizer, tmp_path), mirrored=False)
    assert len(list(tmp_path.glob("*.codes.npy"))) == 1
    again = cached_codes("d", "train", images, labels, request(tokenizer, tmp_path), mirrored=False)
    assert np.array_equal(first, again) and len(list(tmp_path.glob("*.codes.npy"))) == 1, "an entry is reused"

    other = images.copy()
    other[0, 0, 0, 0] ^= 1  # one pixel of one image: another crop, size or source file changes at least this
    cached_codes("d", "train", other, labels, request(tokenizer, tmp_path), mirrored=False)
    with torch.no_grad():
        next(tokenizer.parameters()).mul_(1.5)  # another tokenizer
    retrained = cached_codes("d", "train", images, labels, request(tokenizer, tmp_path), mirrored=False)
    assert len(list(tmp_path.glob("*.codes.npy"))) == 3
    pixels = torch.from_numpy(images).float() / 127.5 - 1
    assert torch.equal(torch.from_numpy(retrained[:, 0]).long(), tokenizer.encode(pixels))


def final_state(run_dir) -> dict:
    return read_checkpoint(run_dir / "checkpoints" / "last.ckpt")


def assert_same_training_state(a: dict, b: dict) -> None:
    """The same step, weights and optimizer state."""
    assert a["global_step"] == b["global_step"] and a["epoch"] == b["epoch"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, tensor in a["state_dict"].items():
        torch.testing.assert_close(tensor, b["state_dict"][key], rtol=0, atol=1e-6, msg=key)
    for pid, state in a["optimizer_states"][0]["state"].items():
        for name, value in state.items():
            torch.testing.assert_close(value, b["optimizer_states"][0]["state"][pid][name], rtol=0, atol=1e-6)


@pytest.mark.slow
def test_a_run_on_cached_codes_equals_one_on_pixels_and_resumes_mid_epoch_exactly(tokenizer_ckpt, tmp_path,
                                                                                   monkeypatch):
    def run(name: str, *extra: str) -> None:
        train(compose_train(tmp_path, *PARTI, f"model.tokenizer_ckpt={tokenizer_ckpt}",
                            f"paths.output_dir={tmp_path / name}", *extra, fast=False))

    run("pixels")
    run("codes", "model.code_cache=true")
    entries = list((tmp_path / "data" / ".cache" / "codes").glob("*.codes.npy"))
    assert len(entries) == 2, "the train and val splits' codes, beside the decoded images"
    assert_same_training_state(final_state(tmp_path / "pixels"), final_state(tmp_path / "codes"))

    # Interrupted after batch 3 of epoch 0 (a real SIGUSR1, handled by the preemption callback), then resumed.
    original = ImageTokenModule.training_step

    def training_step(self, batch, batch_idx):
        loss = original(self, batch, batch_idx)
        if self.global_step == 2 and batch_idx == 2:
            os.kill(os.getpid(), signal.SIGUSR1)
        return loss

    with monkeypatch.context() as patch:
        patch.setattr(ImageTokenModule, "training_step", training_step)
        run("cut", "model.code_cache=true")
    assert final_state(tmp_path / "cut")["global_step"] == 3
    run("cut", "model.code_cache=true", "ckpt_path=last")
    assert_same_training_state(final_state(tmp_path / "codes"), final_state(tmp_path / "cut"))


def test_a_damaged_entry_is_rebuilt_not_read(tokenizer_ckpt, tmp_path, caplog):
    tokenizer, _ = load_image_tokenizer(str(tokenizer_ckpt))
    tokenizer.eval()
    images = np.random.default_rng(1).integers(0, 256, (6, 1, 16, 16), dtype=np.uint8)
    first = np.array(cached_codes("d", "train", images, np.arange(6), request(tokenizer, tmp_path), mirrored=False))
    [entry] = tmp_path.glob("*.codes.npy")
    damaged = bytearray(entry.read_bytes())
    damaged[-1] ^= 0xFF  # the last code of the last image
    entry.write_bytes(bytes(damaged))
    again = cached_codes("d", "train", images, np.arange(6), request(tokenizer, tmp_path), mirrored=False)
    assert "codes cache entry" in caplog.text and "is damaged" in caplog.text
    assert np.array_equal(again, first)
