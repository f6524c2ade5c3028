"""Checksums of checkpoints and caches: a damaged file is named and never read, an older unsealed one still loads."""

import logging
import os
import zipfile

import numpy as np
import pytest
import torch
from checkpoint_helpers import flip_tensor_bytes

from parti_exp.data.uint8_cache import UInt8Cache
from parti_exp.metrics.disk_cache import atomic_save, load_if_present
from parti_exp.runtime.checkpoint_integrity import DamagedCheckpointError
from parti_exp.runtime.checkpoints import load_checkpoint_file, resolve_ckpt_path, write_atomically
from parti_exp.runtime.integrity import check_sealed


def state(value: float) -> dict:
    return {"state_dict": {"w": torch.full((64,), value)}, "global_step": int(value)}


def write_run(directory, names_and_values) -> list:
    """Checkpoints written in order (each newer than the one before)."""
    paths = []
    for index, (name, value) in enumerate(names_and_values):
        path = directory / "checkpoints" / name
        write_atomically(state(value), path)
        os.utime(path, ns=(index * 10**9, index * 10**9))
        paths.append(path)
    return paths


def test_a_sealed_checkpoint_loads_with_plain_torch_load_and_passes_its_check(tmp_path):
    (path,) = write_run(tmp_path, [("last.ckpt", 2.0)])
    assert check_sealed(path).ok
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], torch.full((64,), 2.0))
    assert zipfile.ZipFile(path).comment.startswith(b"parti_exp-sha256:")


def test_flipped_tensor_bytes_are_refused_naming_the_file_and_an_intact_older_checkpoint(tmp_path):
    older, last = write_run(tmp_path, [("epoch_0000.ckpt", 1.0), ("last.ckpt", 2.0)])
    flip_tensor_bytes(last)
    # torch itself reads the damaged tensor without a word: the weights are silently wrong
    assert not torch.equal(torch.load(last, weights_only=True)["state_dict"]["w"], torch.full((64,), 2.0))
    with pytest.raises(DamagedCheckpointError) as raised:
        load_checkpoint_file(last)
    message = str(raised.value)
    assert f"ckpt_path={last} is damaged" in message
    assert "does not match the SHA-256 stored in it" in message
    assert f"newest intact checkpoint of this run is {older}" in message


def test_a_truncated_checkpoint_is_refused_as_truncated(tmp_path):
    (last,) = write_run(tmp_path, [("last.ckpt", 2.0)])
    os.truncate(last, last.stat().st_size - 100)
    with pytest.raises(DamagedCheckpointError, match=r"truncated or overwritten at its end .* no other checkpoint"):
        load_checkpoint_file(last)


def test_a_checkpoint_without_checksum_loads_with_one_warning(tmp_path, caplog):
    path = tmp_path / "old.ckpt"
    torch.save(state(3.0), path)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert load_checkpoint_file(path)["global_step"] == 3
    assert [r.getMessage() for r in caplog.records].count(
        f"{path} has no checksum (written by an older parti_exp or another tool): loaded without an integrity check"
    ) == 1


def test_auto_resumes_from_the_newest_intact_checkpoint_skipping_damaged_ones(tmp_path, caplog):
    older, newer, last = write_run(tmp_path, [("epoch_0000.ckpt", 1.0), ("epoch_0001.ckpt", 2.0), ("last.ckpt", 3.0)])
    assert resolve_ckpt_path("auto", tmp_path) == str(last)
    flip_tensor_bytes(last)
    os.truncate(newer, 200)
    with caplog.at_level(logging.WARNING):
        assert resolve_ckpt_path("auto", tmp_path) == str(older)
        assert resolve_ckpt_path("last", tmp_path) == str(older)
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping the damaged")]
    assert any(str(last) in m for m in skipped) and any(str(newer) in m for m in skipped)


def test_auto_without_any_intact_checkpoint_is_a_fresh_start(tmp_path):
    assert resolve_ckpt_path("auto", tmp_path) is None
    (last,) = write_run(tmp_path, [("last.ckpt", 1.0)])
    os.truncate(last, 10)
    assert resolve_ckpt_path("auto", tmp_path) is None
    os.truncate(last, 0)  # not even an archive's first bytes
    assert resolve_ckpt_path("auto", tmp_path) is None


def test_a_restarted_torchrun_group_resumes_by_itself(tmp_path, monkeypatch):
    (last,) = write_run(tmp_path, [("last.ckpt", 1.0)])
    assert resolve_ckpt_path(None, tmp_path) is None
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    assert resolve_ckpt_path(None, tmp_path) == str(last)
    # A run that started from another run's checkpoint continues from its own newest one
    given = tmp_path / "pretrained.ckpt"
    write_atomically(state(0.5), given)
    assert resolve_ckpt_path(str(given), tmp_path) == str(last)
    assert resolve_ckpt_path(str(given), tmp_path / "fresh") == str(given)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    assert resolve_ckpt_path(None, tmp_path) is None


def test_a_damaged_metrics_cache_file_is_rebuilt_with_a_warning(tmp_path, caplog):
    path = atomic_save({"mu": torch.arange(64.0)}, tmp_path / "stats.pt")
    assert torch.equal(load_if_present(path)["mu"], torch.arange(64.0))
    flip_tensor_bytes(path)
    with caplog.at_level(logging.WARNING):
        assert load_if_present(path) is None
    assert "is damaged (its content does not match" in caplog.text and "rebuilding it" in caplog.text


def test_a_damaged_uint8_cache_entry_is_rebuilt_with_a_warning(tmp_path, caplog):
    cache = UInt8Cache(tmp_path)
    images = np.random.default_rng(0).integers(0, 256, size=(6, 3, 4, 4), dtype=np.uint8)
    cache.build("entry", np.arange(6), (3, 4, 4), [images])
    images_path, _ = cache.paths("entry")
    with open(images_path, "r+b") as file:
        file.seek(-5, os.SEEK_END)
        file.write(b"\0\1\2\3\4")
    with caplog.at_level(logging.WARNING):
        assert cache.load("entry") is None
    assert "entry.images.npy does not match its recorded SHA-256" in caplog.text
    cache.build("entry", np.arange(6), (3, 4, 4), [images])
    np.testing.assert_array_equal(cache.load("entry")[0], images)
