"""A short seeded nemesis run in CI: 4 validators in network namespaces (loopback when not
root), three faults of the seeded schedule and an equivocating validator, then every check of
tests/fault/checks.py. ``CLEARCHAIN_FAULT_SEED`` picks another schedule; longer runs:
``python -m tests.fault.run --minutes 30 --seed S``."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from localnet import hosts
from tests.fault.nemesis import schedule
from tests.fault.run import run

SEED = int(os.environ.get("CLEARCHAIN_FAULT_SEED", "17"))
FAULTS = 3


@pytest.mark.slow
def test_a_seeded_fault_schedule_keeps_the_chain_safe_live_and_lossless(tmp_path: Path):
    faults = list(itertools.islice(schedule(SEED, 4, hold_s=(3.0, 5.0)), FAULTS))
    lines: list[str] = []
    report = run(tmp_path, SEED, faults=faults, out=lines.append)
    summary = f"seed {SEED}:\n" + "\n".join(lines)
    assert report["problems"] == {}, summary + f"\n{report['problems']}"
    assert report["safety_violations"] == 0
    assert sum(report["faults_applied"].values()) == FAULTS + 1, summary
    assert report["faults_applied"]["equivocate"] == 1
    assert report["txs"]["acknowledged"] > 0 and report["txs"]["found_on_every_node"] == report["txs"]["acknowledged"]
    assert report["namespaces"] == (hosts.unavailable() is None)
    prefix = f"ccf{os.getpid() % 10000}"
    assert hosts.leftovers(prefix) == ([], [])
