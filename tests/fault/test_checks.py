"""The nemesis checks (tests/fault/checks.py) on doctored inputs: each must hold on a healthy
history and fail on the one broken thing, including a node store tampered on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from consensus.types import Block
from node.blockstore import BlockStore, open_db
from tests.fault.checks import (
    Ack,
    BlockFacts,
    Burst,
    Recovery,
    check_acknowledged,
    check_bursts,
    check_disk_full,
    check_equivocation,
    check_liveness,
    check_progress,
    check_safety,
    read_store,
)

BYZ = b"\xbb" * 20


def _facts(height: int, txs: tuple[bytes, ...] = (), evidence: tuple[bytes, ...] = (), fork: bytes = b"") -> BlockFacts:
    return BlockFacts(block_hash=bytes([height]) * 31 + (fork or b"\x00"), app_hash=bytes([height]) * 32,
                      txs=txs, results=tuple(b"ok" for _ in txs), evidence_against=evidence)


def _healthy() -> dict[str, dict[int, BlockFacts]]:
    chain = {h: _facts(h, txs=(b"t%d" % h,), evidence=(BYZ,) if h == 3 else ()) for h in range(1, 6)}
    return {f"node{i}": dict(chain) for i in range(4)}


def test_a_healthy_history_passes_every_check():
    chains = _healthy()
    assert check_safety(chains) == []
    assert check_acknowledged([Ack(b"t2", 2, 0, "node1"), Ack(b"t5", 5, 0, "node3")], chains) == []
    assert check_liveness([Recovery("kill", 3.0, 30.0), Recovery("delay", 0.5, 20.0)]) == []
    assert check_equivocation(BYZ, chains, {"node0": [b"\x01" * 20]}) == []
    assert check_progress(chains, at_least=5) == []


def test_safety_fails_on_a_different_block_or_app_hash_at_one_height():
    chains = _healthy()
    chains["node2"][4] = _facts(4, txs=(b"t4",), fork=b"\x01")
    problems = check_safety(chains)
    assert len(problems) == 1 and "height 4" in problems[0] and "node2" in problems[0]
    chains = _healthy()
    original = chains["node1"][2]
    chains["node1"][2] = BlockFacts(original.block_hash, b"\x99" * 32, original.txs, original.results, ())
    assert ["height 2: app hashes differ" in p for p in check_safety(chains)] == [True]


def test_acknowledged_fails_when_a_tx_is_missing_moved_or_a_node_is_short():
    chains = _healthy()
    del chains["node3"][5]  # node3 never got to 5 (lost after a restart)
    assert "node3 never stored that height" in check_acknowledged([Ack(b"t5", 5, 0, "node0")], chains)[0]
    chains = _healthy()
    assert "not in node0's block 4" in check_acknowledged([Ack(b"t5", 4, 0, "node2")], chains)[0]
    chains = _healthy()
    facts = chains["node1"][2]
    chains["node1"][2] = BlockFacts(facts.block_hash, facts.app_hash, facts.txs, (b"failed",), ())
    assert "tx results differ" in check_acknowledged([Ack(b"t2", 2, 0, "node1")], chains)[-1]


def test_liveness_fails_past_the_bound_and_when_never_recovered():
    assert "bound 20 s" in check_liveness([Recovery("loss", 21.0, 20.0)])[0]
    assert "no progress" in check_liveness([Recovery("partition-halves", None, 30.0)])[0]


def test_bursts_fail_below_capacity_when_shutting_clients_out_or_stopping_the_chain():
    assert check_bursts([Burst(admitted=900, refused_for_load=10_000, blocks_during=12)]) == []
    assert "never passed capacity" in check_bursts([Burst(4_000, 0, 30)])[0]
    assert "clients shut out" in check_bursts([Burst(0, 10_000, 12)])[0]
    assert "stopped instead of degrading" in check_bursts([Burst(900, 10_000, 1)])[0]


def test_disk_full_fails_when_the_node_ran_on_or_exited_otherwise():
    assert check_disk_full([74, 74]) == []
    assert "kept running" in check_disk_full([-1])[0]
    assert "exited with 1" in check_disk_full([74, 1])[0]


def test_equivocation_fails_without_evidence_on_a_node_or_when_not_jailed():
    chains = _healthy()
    chains["node1"][3] = _facts(3, txs=(b"t3",))  # node1 has no evidence
    assert check_equivocation(BYZ, chains, {}) == [f"node1: no committed evidence against {BYZ.hex()[:12]}"]
    assert "still a validator" in check_equivocation(BYZ, _healthy(), {"node2": [BYZ]})[0]


def test_progress_fails_on_a_run_that_never_moved():
    assert check_progress({"node0": {1: _facts(1)}}, at_least=10) == ["node0 stored 1 blocks, fewer than 10"]


@pytest.mark.slow
def test_read_store_sees_a_tampered_store_and_safety_catches_it(tmp_path: Path):
    """Two real homes from a short cluster run; one store's block rewritten on disk after the
    stop: the reader returns what is on disk and the safety check reports the height."""
    from tests.fault.testbed import Testbed

    bed = Testbed(tmp_path, validators=4, namespaces=False)
    try:
        bed.start()
        bed.cluster.wait_height([0, 1, 2, 3], 4, timeout=60)
    finally:
        bed.close()
    chains = {f"node{i}": read_store(home.store_dir) for i, home in enumerate(bed.cluster.homes)}
    assert check_safety(chains) == [] and min(len(c) for c in chains.values()) >= 4
    db = open_db(str(bed.cluster.homes[2].store_dir), write_buffer_mb=4)
    try:
        blocks = BlockStore(db)
        block = Block.decode(blocks.block(3))
        from dataclasses import replace

        forged = replace(block, header=replace(block.header, time_ms=block.header.time_ms + 1))
        key = next(k for k, v in db.iterator() if v == blocks.block(3))
        db.put(key, forged.encode())
    finally:
        db.close()
    tampered = dict(chains, node2=read_store(bed.cluster.homes[2].store_dir))
    problems = check_safety(tampered)
    assert problems and problems[0].startswith("height 3: nodes commit different blocks")
