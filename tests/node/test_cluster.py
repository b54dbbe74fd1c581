"""Four validator processes (and a fifth, non-validating node) on 127.0.0.1, really killed.

The tests run in file order on one cluster (starting node processes is the slow part):
agreement, tx gossip, SIGKILL of one and of two validators, SIGSTOP/SIGCONT, a new node syncing
from genesis, and at the end every node's store is opened and compared block by block.
"""

from __future__ import annotations

import random
import signal
import time
from typing import Any

import pytest

from primitives.codec import decode
from primitives.crypto import PrivateKey
from consensus.types import Block, Commit, CommitFlag
from node.blockstore import BlockStore, open_db
from state.builders import build_transfer_tx
from state.store import MerkleStore

pytestmark = pytest.mark.slow

FULL_NODE = 4
STATE: dict[str, Any] = {}


@pytest.fixture(scope="module")
def cluster(cluster_factory):  # type: ignore[no-untyped-def]
    made = cluster_factory(validators=4, full_nodes=1)
    made.start_all()
    return made


def test_validators_commit_blocks(cluster) -> None:  # type: ignore[no-untyped-def]
    cluster.wait_height([0, 1, 2, 3], 5, timeout=90)


def test_second_node_on_the_same_home_refuses_to_start(cluster) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    second = subprocess.run(
        [sys.executable, "-m", "cli", "start", "--home", str(cluster.homes[0].root)],
        capture_output=True, text=True, timeout=60, cwd=cluster.repo)
    assert second.returncode != 0
    assert "already running" in second.stderr
    assert cluster.alive(0)


def test_txs_sent_to_one_node_are_included_by_other_proposers(cluster) -> None:  # type: ignore[no-untyped-def]
    signer = cluster.signer(0)
    recipient = PrivateKey(b"\x07" * 32).address
    sent: list[str] = []
    with cluster.client(0) as client:
        for i in range(12):
            height = client.latest_height()
            tx = build_transfer_tx(signer, cluster.chain_id, recipient, "USDC", 1 + i, fee=1000,
                                   expiry=height + 200)
            reply = client.broadcast_tx_sync(tx)
            assert int(reply["code"]) == 0, reply
            sent.append(reply["hash"])
            time.sleep(0.15)
    proposers: set[str] = set()
    me = cluster.keys[0].address.hex().upper()

    def all_included() -> bool:
        proposers.clear()
        with cluster.client(1) as client:  # ask another node: the txs reached it by gossip
            for tx_hash in sent:
                try:
                    record = client.call("tx", hash=tx_hash)
                except Exception:  # not yet committed
                    return False
                block = client.call("block", height=int(record["height"]))
                proposers.add(str(block["block"]["header"]["proposer_address"]).upper())
        return True

    cluster.wait_for(all_included, 60, "the txs to be committed")
    assert proposers - {me}, "every tx was proposed by the node that received it"


def test_sigkill_one_validator_rest_continue_and_it_rejoins(cluster) -> None:  # type: ignore[no-untyped-def]
    time.sleep(random.uniform(0, 0.5))  # a random moment of the round
    cluster.kill(3)
    before = max(cluster.heights([0, 1, 2]))
    cluster.wait_height([0, 1, 2], before + 8, timeout=60)
    cluster.start(3)
    target = max(cluster.heights([0, 1, 2]))
    cluster.wait_height([3], target, timeout=90)
    STATE["rejoined_at"] = cluster.height(3)
    cluster.wait_height([0, 1, 2, 3], STATE["rejoined_at"] + 8, timeout=60)


def test_sigkill_two_of_four_halts_without_fork_then_resumes(cluster) -> None:  # type: ignore[no-untyped-def]
    cluster.kill(2)
    cluster.kill(3)
    time.sleep(1.0)  # let a block already decided finish
    stalled = cluster.heights([0, 1])
    time.sleep(3.0)
    assert cluster.heights([0, 1]) == stalled, "blocks were committed without a quorum"
    cluster.start(2)
    cluster.start(3)
    cluster.wait_height([0, 1, 2, 3], max(stalled) + 5, timeout=120)


def test_sigstop_then_sigcont_catches_up(cluster) -> None:  # type: ignore[no-untyped-def]
    cluster.signal(1, signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        start = max(cluster.heights([0, 2, 3]))
        cluster.wait_height([0, 2, 3], start + 10, timeout=60)  # the other three go on
        time.sleep(max(0.0, 5.0 - (time.monotonic() - stopped_at)))  # stopped >= 5 s
    finally:
        cluster.signal(1, signal.SIGCONT)
    target = max(cluster.heights([0, 2, 3]))
    cluster.wait_height([1], target, timeout=90)


def test_new_full_node_syncs_from_genesis_and_follows(cluster) -> None:  # type: ignore[no-untyped-def]
    cluster.wait_height([0, 1, 2, 3], 200, timeout=180)
    cluster.start(FULL_NODE)
    cluster.wait_for(lambda: cluster.height(FULL_NODE) >= max(cluster.heights([0, 1, 2, 3])) - 1,
                     120, "the full node to reach the validators' height")
    synced = cluster.height(FULL_NODE)
    cluster.wait_height([FULL_NODE], synced + 5, timeout=60)
    assert "block sync done" in cluster.log_text(FULL_NODE)


def test_stores_agree_and_nobody_double_signed(cluster) -> None:  # type: ignore[no-untyped-def]
    for i in range(cluster.size):
        assert cluster.stop(i) == 0, f"node{i} did not stop cleanly:\n{cluster.log_text(i)[-3000:]}"
    chains: list[dict[int, tuple[bytes, bytes, bytes]]] = []
    node3 = cluster.keys[3].address
    signed_after_rejoin = False
    for i, home in enumerate(cluster.homes):
        db = open_db(str(home.store_dir))
        try:
            blocks, states = BlockStore(db), MerkleStore(db)
            heights: dict[int, tuple[bytes, bytes, bytes]] = {}
            for height in range(1, blocks.latest_height() + 1):
                raw = blocks.block(height)
                assert raw is not None
                block = Block.decode(raw, max_bytes=len(raw))
                assert block.evidence == (), f"evidence in block {height} on node{i}"
                heights[height] = (raw, block.header.app_hash, states.root_at(height))
                if i == 0 and height > STATE.get("rejoined_at", 10**9):
                    commit = Commit.from_obj(decode(blocks.commit(height)))
                    signed_after_rejoin |= any(
                        s.flag == CommitFlag.COMMIT and s.validator_address == node3
                        for s in commit.signatures)
            chains.append(heights)
        finally:
            db.close()
        assert "double signing detected" not in cluster.log_text(i)
    common = set.intersection(*(set(c) for c in chains))
    assert len(common) >= 200
    for height in sorted(common):
        assert len({c[height] for c in chains}) == 1, f"nodes disagree at height {height}"
    assert signed_after_rejoin, "the restarted validator never signed again"
