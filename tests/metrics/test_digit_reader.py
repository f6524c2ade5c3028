"""The digit reader behind caption and scene accuracy is an instrument: it reads held-out real digits (the data
module's val split, which its classifier never saw) and declines the negative controls: blends of two different
digits, heavy blur, uniform noise and faintly drawn digits."""

import numpy as np
import pytest
import torch
from judges import blends, blurred, uniform_noise

from parti_exp.data import DigitScenesDataModule, DigitsDataModule
from parti_exp.data.base import to_signed_unit
from parti_exp.metrics.digit_classifier import load_or_train_classifier
from parti_exp.metrics.digit_reader import UNREADABLE, DigitReader
from parti_exp.metrics.scene_reader import load_scene_reader


@pytest.fixture(scope="module")
def digits_and_reader(tmp_path_factory):
    dm = DigitsDataModule(img_size=16)
    dm.setup()
    cache = tmp_path_factory.mktemp("reader")
    classifier = load_or_train_classifier(dm.train_set, dm.val_set, 10, cache, torch.device("cpu"), "digits").net
    val = to_signed_unit(torch.from_numpy(np.ascontiguousarray(dm.val_set.images)))
    return val, np.asarray(dm.val_set.labels), DigitReader.fitted(classifier, dm.train_set)


def clear_share(reader: DigitReader, images: torch.Tensor) -> float:
    return float((reader.read(images) != UNREADABLE).float().mean())


def test_the_reader_reads_held_out_digits(digits_and_reader):
    val, labels, reader = digits_and_reader
    read = reader.read(val).numpy()
    assert (read != UNREADABLE).mean() >= 0.88
    assert (read[read != UNREADABLE] == labels[read != UNREADABLE]).mean() >= 0.97


def test_the_reader_declines_blends_blurs_noise_and_faint_digits(digits_and_reader):
    val, labels, reader = digits_and_reader
    assert clear_share(reader, blends(val, labels)) <= 0.45
    assert clear_share(reader, blurred(val, 1.5)) <= 0.70
    assert clear_share(reader, uniform_noise(len(val))) <= 0.05
    faint = (val + 1) * 0.3 - 1  # the digit at 30 % of its ink
    assert clear_share(reader, faint) <= 0.05
    # the classifier alone would read most of them as some digit
    _, logits = reader.classifier(((blends(val, labels) + 1) * 127.5).round().to(torch.uint8))
    assert (logits.softmax(-1).max(-1).values >= 0.7).float().mean() > 0.6


@pytest.mark.slow  # the scene reader's classifier trains once per session (scene_reader_cache)
def test_the_scene_readers_digit_reader_declines_blends_too(scene_reader_cache):
    dm = DigitScenesDataModule(num_train=64, num_val=1).digits
    reader = load_scene_reader(dm, scene_reader_cache, torch.device("cpu")).digits
    val = to_signed_unit(torch.from_numpy(np.ascontiguousarray(dm.val_set.images)))
    labels = np.asarray(dm.val_set.labels)
    assert clear_share(reader, val) >= 0.9
    assert clear_share(reader, blends(val, labels)) <= 0.45
    assert clear_share(reader, blurred(val, 1.5)) <= 0.70
