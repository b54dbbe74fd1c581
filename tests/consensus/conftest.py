"""Fixtures of the consensus tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/ is not a package: reach the helpers

from consensus_helpers import Keys


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys()
