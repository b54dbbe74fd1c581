"""Messages a hostile peer can send without any valid signature must not stall the node."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from consensus.events import ProposalMessage
from consensus.types import Proposal
from node.messages import encode_consensus
from tests.node.test_node_inprocess import make_node, wait_for


@pytest.mark.timeout(60)  # the unfixed walk blocks the loop, where trio cannot cancel it
async def test_unsigned_proposal_with_a_huge_round_is_ignored_at_once(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.chain.height >= 1)
        block = node.chain.block(1)
        height = node.driver.state.height
        for huge_round in (10**9, 2**63 - 1):
            forged = Proposal(height, huge_round, -1, block.block_id(), 1, b"\x00" * 64)
            # Finding the proposer of round r walks r priority steps: unbounded, this would
            # block the event loop for hours.
            with trio.fail_after(10):
                await node.driver.on_message(node.network.peer_id, encode_consensus(
                    ProposalMessage(forged, block)))
        await wait_for(lambda: node.chain.height >= height + 1)  # consensus goes on
        nursery.cancel_scope.cancel()


class _LyingSyncPeer:
    """A network with one peer that claims a huge height and serves no blocks."""

    def __init__(self) -> None:
        from node.config import Config

        self.config = Config().p2p
        self.connected = True
        self.requests = 0
        self.disconnect_reasons: list[str] = []
        self.sync = None

    def set_handler(self, *_args) -> None: ...

    def on_peer_connected(self, *_args) -> None: ...

    def on_peer_disconnected(self, *_args) -> None: ...

    def peers(self) -> list[str]:
        return ["liar"] if self.connected else []

    def disconnect(self, peer: str, reason: str) -> None:
        self.connected = False
        self.disconnect_reasons.append(reason)

    async def send(self, peer: str, protocol: str, data: bytes) -> None:
        from node.messages import Blocks, GetBlocks, SyncStatus, decode_sync, encode_sync

        if not self.connected:
            return
        message = decode_sync(data, 1 << 20)
        await self.sync.on_message("liar", encode_sync(SyncStatus(1, 2**63)))
        if isinstance(message, GetBlocks):
            self.requests += 1
            await self.sync.on_message("liar", encode_sync(Blocks(message.request_id, ())))


async def test_block_sync_drops_a_peer_that_claims_blocks_it_never_serves(tmp_path: Path) -> None:
    from node.blocksync import BlockSync
    from node.chain import Chain
    from state.store import MemoryDB
    from tests.node.test_chain import genesis

    network = _LyingSyncPeer()
    sync = BlockSync(Chain(MemoryDB(), genesis()), network)
    network.sync = sync
    with trio.fail_after(20):  # before the fix: a busy loop of requests, sync never ends
        await sync.sync(first_status_wait=1.0)
    assert network.disconnect_reasons and "no blocks" in network.disconnect_reasons[0]
    assert network.requests < 50


class _StalledStream:
    """Sends a frame header promising 1 MiB, part of the body, then nothing, forever."""

    def __init__(self) -> None:
        import struct

        self._chunks = [struct.pack(">I", 1 << 20), b"\x00" * 1000]

    async def read(self, _size: int) -> bytes:
        if self._chunks:
            return self._chunks.pop(0)
        await trio.sleep_forever()
        return b""


async def test_a_frame_body_that_never_completes_is_a_frame_error(autojump_clock) -> None:
    from node.p2p.frames import FRAME_BODY_TIMEOUT, FrameError, FrameReader

    reader = FrameReader(_StalledStream(), max_frame_bytes=8 << 20)
    started = trio.current_time()
    with pytest.raises(FrameError, match="not completed"):
        await reader.read_frame()
    assert trio.current_time() - started >= FRAME_BODY_TIMEOUT


async def test_a_peer_caught_with_one_bad_catch_up_block_loses_all_it_buffered(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.chain.height >= 1)
        driver, inbound = node.driver, node.driver.inbound
        reasons: list[tuple[str, str]] = []
        node.network.disconnect = lambda peer, reason: reasons.append((peer, reason))  # type: ignore[method-assign]
        inbound.commit_ok = lambda block, commit: False  # type: ignore[method-assign]
        block, commit = node.chain.block(1), node.chain.commit(1)
        height = driver.state.height
        for ahead in range(6):  # what a hostile peer pre-fills: junk for several future heights
            inbound._catchup[height + ahead] = {"evil": (block, commit)}
        inbound._catchup[height + 9] = {"honest": (block, commit)}
        await driver._feed_buffered_catchup()
        assert reasons and reasons[0][0] == "evil"
        assert [list(copies) for copies in inbound._catchup.values()] == [["honest"]]  # honest copies can land
        nursery.cancel_scope.cancel()
