"""The text-to-image tests use tiny models, for which intra-op threads only add waiting."""

import pytest


@pytest.fixture(autouse=True)
def single_threaded(one_thread):
    """Every test here on one thread (tests/conftest.py)."""
