"""Fixtures shared by all tests."""

import pytest
from hydra_compose import compose_train


@pytest.fixture
def cfg_factory(tmp_path):
    """``cfg_factory(*overrides, fast=True)``: the composed train config writing under ``tmp_path``."""
    return lambda *overrides, **kw: compose_train(tmp_path, *overrides, **kw)
