"""The limits: one definition (rpc/limits.py), documented in rpc/README.md from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from node.config import Config
from rpc.limits import Limits, limits_table

README = Path(__file__).resolve().parents[2] / "rpc" / "README.md"


def test_readme_limits_table_is_the_one_the_code_renders() -> None:
    """Regenerate with: python -c 'from rpc.limits import limits_table; print(limits_table())'."""
    assert limits_table() in README.read_text(), "rpc/README.md's limits table is out of date"


def test_every_limit_says_why_and_what_cometbft_has() -> None:
    for item in dataclasses.fields(Limits):
        assert len(item.metadata["why"]) > 20, item.name
        assert item.metadata["cometbft"], item.name


def test_the_node_runs_the_documented_defaults() -> None:
    assert Config().rpc.limits == Limits()


def test_a_limit_below_its_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="max_websocket_clients"):
        Limits(max_websocket_clients=0)
    assert Limits(max_connections_per_address=0).max_connections_per_address == 0
