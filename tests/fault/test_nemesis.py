"""Short seeded nemesis runs in CI: 4 validators in network namespaces (loopback when not root),
three faults of each seed's schedule, then every check of tests/fault/checks.py.

The seeds together cover 12 of the 14 repeatable fault kinds: 17 a pause, a burst and a full
disk, then an equivocating validator; 25 loss, kill -9 and a two-against-two partition; 47
delay, a link down and clock skew; 21 a bridge, an isolated proposer and one node cut off.
Without root no small disk can be mounted, the schedules draw from the other kinds and differ.
``CLEARCHAIN_FAULT_SEED`` runs that one schedule instead; longer runs:
``python -m tests.fault.run --minutes 30 --seed S``."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from localnet import hosts
from tests.fault.nemesis import schedule
from tests.fault.run import run

EQUIVOCATING_SEED = 17
SEEDS = ([int(os.environ["CLEARCHAIN_FAULT_SEED"])] if os.environ.get("CLEARCHAIN_FAULT_SEED")
         else [EQUIVOCATING_SEED, 25, 47, 21])
FAULTS = 3


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_a_seeded_fault_schedule_keeps_the_chain_safe_live_and_lossless(tmp_path: Path, seed: int):
    faults = list(itertools.islice(schedule(seed, 4, hold_s=(3.0, 5.0)), FAULTS))
    equivocate = seed == EQUIVOCATING_SEED or len(SEEDS) == 1
    lines: list[str] = []
    report = run(tmp_path, seed, faults=faults, equivocate=equivocate, out=lines.append)
    summary = f"seed {seed}:\n" + "\n".join(lines)
    assert report["problems"] == {}, summary + f"\n{report['problems']}"
    assert report["safety_violations"] == 0
    assert sum(report["faults_applied"].values()) == FAULTS + equivocate, summary
    assert report["faults_applied"].get("equivocate", 0) == equivocate
    assert report["txs"]["acknowledged"] > 0 and report["txs"]["found_on_every_node"] == report["txs"]["acknowledged"]
    assert report["namespaces"] == (hosts.unavailable() is None)
    prefix = f"ccf{os.getpid() % 10000}"
    assert hosts.leftovers(prefix) == ([], [])
