"""Fixtures shared by all tests."""

import pytest
import torch
from hydra_compose import compose_train
from threadpoolctl import threadpool_limits

from parti_exp.data import DigitScenesDataModule
from parti_exp.metrics.scene_reader import load_scene_reader


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that train for tens of seconds go first: a two-minute test handed out last keeps the suite waiting
    on one worker while the others are done (with `make test`'s `--dist worksteal` the idle ones take what is left)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: file order otherwise


@pytest.fixture
def one_thread():
    """One thread for torch and numpy's BLAS pools, for the tests of tiny models and of the metrics (autouse in
    tests/metrics and tests/models/text_to_image, asked for by name elsewhere): on a CPU shared with other jobs, extra
    threads spin against each other (a 2048 x 2048 eigendecomposition for FID took 84 s with two, 4.6 s with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):  # numpy's OpenBLAS, used by torch-fidelity
        yield
    torch.set_num_threads(threads)


@pytest.fixture
def cfg_factory(tmp_path):
    """``cfg_factory(*overrides, fast=True)``: the composed train config writing under ``tmp_path``."""
    return lambda *overrides, **kw: compose_train(tmp_path, *overrides, **kw)


@pytest.fixture(scope="session")
def scene_reader_cache(tmp_path_factory):
    """A cache_dir holding the digit-scene reader's classifier, trained once per session (about 30 s): the reader,
    scene accuracy and digit-scenes training tests share it."""
    cache = tmp_path_factory.mktemp("scene_reader")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny CNN: extra threads only wait for each other
    try:
        load_scene_reader(DigitScenesDataModule(num_train=64, num_val=1).digits, cache, torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    return cache
