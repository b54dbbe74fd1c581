"""consensus/core.py against Algorithm 1, one upon-rule at a time (checks in algorithm1.py)."""

from __future__ import annotations

import pytest
from algorithm1 import CHECKS
from consensus_helpers import Keys

import consensus.core


@pytest.mark.parametrize("name", list(CHECKS))
def test_rule(keys: Keys, name: str) -> None:
    _, check = CHECKS[name]
    check(keys, consensus.core)


def test_every_upon_rule_has_checks() -> None:
    lines = {line for line, _ in CHECKS.values()}
    assert lines >= {22, 28, 34, 36, 44, 47, 49, 55, 57, 61, 65}
