"""Load shedding: a full mempool or a node behind refuses client txs before any work, with a
retry hint; a tx that pays more than the cheapest pending one still gets in; peers' reported
heights are read so that one lying peer cannot make a node refuse its clients."""

from __future__ import annotations

import dataclasses

import pytest

from node.config import MempoolSection
from node.mempool import Mempool
from node.overload import MAX_RETRY_MS, MIN_RETRY_MS, LoadShedder, reported_height
from rpc import errors
from tests.node.test_mempool import FakeApp, tx


def shedder(mempool: Mempool, *, ours: int = 10, peers: int = 10,
            block_ms: float = 700.0, behind_blocks: int = 3) -> LoadShedder:
    return LoadShedder(mempool, refuse_behind_blocks=behind_blocks, max_queue_ms=2000,
                       height=lambda: ours, peers_height=lambda: peers, block_ms=lambda: block_ms)


def full_pool() -> tuple[Mempool, FakeApp]:
    app = FakeApp()
    mempool = Mempool(app, dataclasses.replace(MempoolSection(), max_txs=2))
    assert mempool.check_tx(tx(5, 1)).ok and mempool.check_tx(tx(5, 2)).ok
    return mempool, app


def test_a_pool_with_room_refuses_nothing() -> None:
    app = FakeApp()
    mempool = Mempool(app, dataclasses.replace(MempoolSection(), max_txs=2))
    assert mempool.check_tx(tx(5, 1)).ok
    assert shedder(mempool).refusal(tx(5, 2)) is None


def test_a_full_pool_refuses_before_check_tx_with_one_block_interval_as_hint() -> None:
    mempool, app = full_pool()
    refused = tx(5, 3)  # same fee as the cheapest pending: it could evict nothing
    refusal = shedder(mempool, block_ms=700).refusal(refused)
    assert refusal is not None and "mempool is full" in refusal.reason
    assert refusal.retry_after_ms == 700
    assert refused not in app.calls  # no signature was checked for it


def test_a_full_pool_by_bytes_refuses_too() -> None:
    app = FakeApp()
    mempool = Mempool(app, dataclasses.replace(MempoolSection(), max_bytes=25, max_tx_bytes=25))
    assert mempool.check_tx(tx(5, 1, size=20)).ok
    assert shedder(mempool).refusal(tx(5, 2, size=10)) is not None
    assert shedder(mempool).refusal(tx(5, 2, size=5)) is None  # 25 bytes: it fits


def test_a_tx_paying_more_than_the_cheapest_still_gets_in_a_full_pool() -> None:
    mempool, _ = full_pool()
    richer = tx(9, 3)
    assert shedder(mempool).refusal(richer) is None
    assert mempool.check_tx(richer).ok and len(mempool) == 2


@pytest.mark.parametrize("block_ms, hint", [(0, 1000), (5, MIN_RETRY_MS), (10 ** 9, MAX_RETRY_MS)])
def test_the_hint_is_bounded(block_ms: float, hint: int) -> None:
    mempool, _ = full_pool()
    refusal = shedder(mempool, block_ms=block_ms).refusal(tx(5, 3))
    assert refusal is not None and refusal.retry_after_ms == hint


def test_a_node_behind_its_peers_refuses_and_hints_the_catch_up_time() -> None:
    mempool = Mempool(FakeApp(), MempoolSection())
    assert shedder(mempool, ours=10, peers=12, behind_blocks=3).refusal(tx(5, 1)) is None
    refusal = shedder(mempool, ours=10, peers=14, behind_blocks=3, block_ms=500).refusal(tx(5, 1))
    assert refusal is not None and "4 blocks behind" in refusal.reason
    assert refusal.retry_after_ms == 4 * 500
    assert shedder(mempool, ours=10, peers=1000, behind_blocks=0).refusal(tx(5, 1)) is None  # off


def test_one_peer_claiming_a_huge_height_does_not_make_the_node_behind() -> None:
    assert reported_height([], 10) == 10  # alone: never behind
    assert reported_height([10 ** 9, 10, 11], 10) == 11  # one liar among three
    assert reported_height([10 ** 9, 10], 10) == 10  # one liar of two: the lower report
    assert reported_height([19, 19, 4], 10) == 19  # most peers far ahead: we are behind
    assert reported_height([3, 4, 5], 10) == 10  # peers behind us: our own


async def test_node_view_raises_overloaded_and_never_reaches_admission() -> None:
    from node.api import NodeView
    from node.overload import Refusal

    admitted: list[bytes] = []

    async def admit(raw: bytes) -> object:
        admitted.append(raw)
        raise AssertionError("a shed tx must not reach admission")

    view = NodeView.__new__(NodeView)  # only broadcast_tx's collaborators
    view.admit, view.shed = admit, lambda raw: Refusal("mempool is full", 900)
    with pytest.raises(errors.RPCError) as info:
        await view.broadcast_tx(b"tx")
    assert info.value.code == errors.LIMIT_EXCEEDED
    assert info.value.data == {"detail": "mempool is full", "retry_after_ms": 900}
    assert admitted == []


def test_a_standing_queue_refuses_until_a_block_s_txs_waited_less() -> None:
    mempool = Mempool(FakeApp(), MempoolSection())  # plenty of room: only the wait counts
    shed = shedder(mempool, block_ms=400)
    shed.note_block([0.5, 1.0, 1.5])  # median 1 s: under the 2 s bound
    assert shed.refusal(tx(5, 1)) is None
    shed.note_block([1.0, 3.0, 3.5, 4.0])  # median 3.25 s: txs arrive faster than blocks take them
    refusal = shed.refusal(tx(5, 1))
    assert refusal is not None and "mempool.max_queue_ms" in refusal.reason
    assert refusal.retry_after_ms == 1250  # the excess wait
    shed.note_block([4.0, 4.1, 0.1])  # still standing (median 4 s)
    assert shed.refusal(tx(5, 2)) is not None
    shed.note_block([1.9, 2.5, 0.2])  # the queue went down: admitted again
    assert shed.refusal(tx(5, 3)) is None
    shed.note_block([9.0])
    shed.note_block([])  # an empty block: nothing waits
    assert shed.refusal(tx(5, 4)) is None
    assert shed.refused["queue"] == 2


def test_max_queue_ms_zero_never_refuses_on_the_wait() -> None:
    mempool = Mempool(FakeApp(), MempoolSection())
    shed = LoadShedder(mempool, refuse_behind_blocks=3, max_queue_ms=0, height=lambda: 1,
                       peers_height=lambda: 1, block_ms=lambda: 100)
    shed.note_block([60.0, 60.0])
    assert shed.refusal(tx(5, 1)) is None


async def test_a_node_whose_txs_wait_too_long_refuses_clients_with_a_hint(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Wired in a running node: committed blocks report their txs' waits; with a 1 ms bound
    every block with txs makes a standing queue, and the next client tx is refused (-32002)."""
    import trio

    from primitives.crypto import PrivateKey, Signer
    from state.builders import build_transfer_tx
    from tests.node.test_node_inprocess import make_node, wait_for

    node = make_node(tmp_path, mempool={"max_queue_ms": 1})
    refusals: list[errors.RPCError] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.chain.height >= 1)
        signer, to = Signer(node.validator_key), PrivateKey(b"\x09" * 32).address
        for n in range(200):
            tx = build_transfer_tx(signer, node.chain.chain_id, to, "USDC", 1 + n, fee=1000,
                                   expiry=node.chain.height + 50)
            try:
                await node.view.broadcast_tx(tx)
            except errors.RPCError as exc:
                refusals.append(exc)
                break
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert refusals and errors.retry_after_ms(refusals[0]) is not None
    assert "max_queue_ms" in refusals[0].data["detail"]


def test_no_commit_for_longer_than_the_bound_with_txs_pending_refuses_too() -> None:
    """Rounds failing one after another: no block reports a wait, yet txs wait ever longer."""
    now = [100.0]
    mempool = Mempool(FakeApp(), MempoolSection())
    shed = LoadShedder(mempool, refuse_behind_blocks=3, max_queue_ms=2000, height=lambda: 1,
                       peers_height=lambda: 1, block_ms=lambda: 500, clock=lambda: now[0])
    now[0] += 5  # no commit for 5 s, but nothing pending: an idle chain is not overloaded
    assert shed.refusal(tx(5, 1)) is None
    assert mempool.check_tx(tx(5, 1)).ok
    refusal = shed.refusal(tx(5, 2))
    assert refusal is not None and refusal.retry_after_ms == 3000  # 5 s waited, 2 s allowed
    shed.note_block([0.1])  # a block commits: the stall is over
    assert shed.refusal(tx(5, 2)) is None
    now[0] += 1.9
    assert shed.refusal(tx(5, 2)) is None  # within the bound
