"""Tx gossip against a real node: client txs pushed whole, peer txs announced, wants answered once."""

from __future__ import annotations

from pathlib import Path

import trio

from primitives.codec import decode, encode
from primitives.crypto import PrivateKey, Signer
from primitives.hashing import sha256
from node.p2p.network import MEMPOOL_PROTOCOL
from node.txgossip import TX_HASHES_PROTOCOL
from state.builders import build_transfer_tx
from tests.node.test_node_inprocess import make_node, raw_peer, wait_for

BLOCK_GAP_MS = 4000  # txs stay pending this long after a commit: the test's steps fit in it


class Peer:
    """A bare libp2p peer of the node that records what it receives per protocol."""

    def __init__(self, address: str) -> None:
        self.network = raw_peer(address)
        self.txs: list[bytes] = []
        self.hash_messages: list[list] = []
        self.network.set_handler(MEMPOOL_PROTOCOL, self._on_tx)
        self.network.set_handler(TX_HASHES_PROTOCOL, self._on_hashes)

    async def _on_tx(self, peer: str, tx: bytes) -> None:
        self.txs.append(tx)

    async def _on_hashes(self, peer: str, message: bytes) -> None:
        self.hash_messages.append(decode(message))


async def test_client_txs_are_pushed_and_peer_txs_announced_then_handed_over_once(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    node = make_node(tmp_path, consensus={"timeout_commit_ms": BLOCK_GAP_MS})
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.chain.height >= 1)
        node.driver.start_on_txs = False  # txs wait for the full BLOCK_GAP_MS
        address = node.network.listen_addrs()[0]
        p, q = Peer(address), Peer(address)
        for peer in (p, q):
            await nursery.start(peer.network.run)
        await wait_for(lambda: len(node.network.peers()) == 2)
        me = node.network.peer_id
        signer, chain_id = Signer(node.validator_key), node.chain.chain_id
        expiry = node.chain.height + 50
        height = node.chain.height
        await wait_for(lambda: node.chain.height > height)  # just committed: the next block is far

        def transfer(amount: int) -> bytes:
            return build_transfer_tx(signer, chain_id, PrivateKey(b"\x09" * 32).address, "USDC", amount,
                                     fee=1000, expiry=expiry)

        # a tx from a peer: admitted, then only announced to the other peer
        relayed = transfer(1)
        await p.network.send(me, MEMPOOL_PROTOCOL, relayed)
        await wait_for(lambda: q.hash_messages == [["have", [sha256(relayed)]]])
        await q.network.send(me, TX_HASHES_PROTOCOL, encode(["want", [sha256(relayed)]]))
        await wait_for(lambda: q.txs == [relayed])
        await q.network.send(me, TX_HASHES_PROTOCOL, encode(["want", [sha256(relayed)]]))  # again

        # a tx from a client: pushed whole to both peers (after the answer to q's first want,
        # on the same stream: had the second want been answered, that copy would come first)
        pushed = transfer(2)
        assert (await node.view.broadcast_tx(pushed)).code == 0
        await wait_for(lambda: pushed in p.txs and pushed in q.txs)
        assert q.txs == [relayed, pushed]
        assert p.txs == [pushed] and p.hash_messages == []  # nothing about the tx p sent

        # a hash the node lacks: it asks the announcer, which then hands the tx over
        announced = transfer(3)
        await p.network.send(me, TX_HASHES_PROTOCOL, encode(["have", [sha256(announced)]]))
        await wait_for(lambda: p.hash_messages == [["want", [sha256(announced)]]])
        await p.network.send(me, MEMPOOL_PROTOCOL, announced)
        await wait_for(lambda: ["have", [sha256(announced)]] in q.hash_messages)
        assert sha256(announced) in node.mempool

        # a malformed hash message is misbehaviour: the peer is dropped, the node carries on
        with caplog.at_level("WARNING", logger="clearchain.p2p"):
            await q.network.send(me, TX_HASHES_PROTOCOL, encode(["have", [b"\x01" * 31]]))
            await wait_for(lambda: any("tx hash message" in r.getMessage() for r in caplog.records))
        height = node.chain.height
        await wait_for(lambda: node.chain.height > height)
        await wait_for(lambda: all(node.chain.blocks.tx(sha256(t)) for t in (relayed, pushed, announced)))
        nursery.cancel_scope.cancel()
