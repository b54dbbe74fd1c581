"""A one-validator node run in-process: blocks, txs through the NodeAPI, misbehaving peers."""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path

import trio

from primitives.codec import encode
from primitives.crypto import PrivateKey, Signer
from primitives.hashing import sha256
from consensus.types import Vote, VoteType
from node.init import init_home
from node.config import Config, P2PSection, replace
from node.home import Home
from node.node import GC_THRESHOLDS, PROTOCOLS, Node
from node.p2p.network import CONSENSUS_PROTOCOL, MEMPOOL_PROTOCOL, Network
from state.builders import build_transfer_tx


def make_node(tmp_path: Path, **sections: dict) -> Node:  # type: ignore[type-arg]
    """A one-validator node home on loopback ports; ``sections`` override config sections."""
    home = Home.at(tmp_path / "solo")
    sections.setdefault("consensus", {"timeout_commit_ms": 50})  # tests count heights: fast ones
    config = replace(Config(), p2p={"listen_address": "/ip4/127.0.0.1/tcp/0"},
                     rpc={"listen_address": "127.0.0.1:0"}, **sections)
    init_home(home, moniker="solo", config=config)
    return Node(home)


async def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


def raw_peer(address: str) -> Network:
    config = dataclasses.replace(P2PSection(), listen_address="/ip4/127.0.0.1/tcp/0",
                                 persistent_peers=(address,), dial_backoff_min_ms=50,
                                 dial_backoff_max_ms=100)
    return Network(PrivateKey.generate(), config,
                   protocols=PROTOCOLS)


async def test_single_validator_commits_and_serves_txs(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    host_thresholds = gc.get_threshold()
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.chain.height >= 2)
        assert gc.get_threshold() == GC_THRESHOLDS
        signer = Signer(node.validator_key)
        tx = build_transfer_tx(signer, node.chain.chain_id, PrivateKey(b"\x09" * 32).address,
                               "USDC", 5, fee=1000, expiry=node.chain.height + 50)
        result = await node.view.broadcast_tx(tx)
        assert result.code == 0, result.log
        assert (await node.view.broadcast_tx(tx)).code != 0  # the duplicate is refused
        await wait_for(lambda: node.chain.blocks.tx(sha256(tx)) is not None)
        record = await node.view.tx(sha256(tx))
        assert record is not None and record.result.code == 0 and record.tx == tx
        status = await node.view.status()
        assert status.latest_block_height >= record.height and not status.catching_up
        assert len(node.mempool) == 0
        nursery.cancel_scope.cancel()
    assert gc.get_threshold() == host_thresholds


async def test_peers_sending_garbage_or_forged_votes_are_disconnected(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    node = make_node(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.chain.height >= 1)
        address = node.network.listen_addrs()[0]
        with caplog.at_level("WARNING", logger="clearchain.p2p"):
            for label, protocol, payload in [
                ("garbage", CONSENSUS_PROTOCOL, b"\xc1not msgpack"),
                ("forged vote", CONSENSUS_PROTOCOL, None),
                ("undecodable tx", MEMPOOL_PROTOCOL, b"\x93junk"),
            ]:
                peer = raw_peer(address)
                async with trio.open_nursery() as inner:
                    await inner.start(peer.run)
                    await wait_for(lambda p=peer: p.peers() == [node.network.peer_id])
                    # a harmless Status first: once the node has it, the stream is open and the
                    # next message arrives within the height it is built for
                    await peer.send(node.network.peer_id, CONSENSUS_PROTOCOL,
                                    encode(["status", 0, 0, 0]))
                    await wait_for(lambda p=peer: p.peer_id in node.driver.inbound.peer_status)
                    if payload is None:  # a vote for the next height signed by a stranger
                        height = node.driver.state.height + 1  # (old heights are just ignored)
                        me = node.chain.validators(height).validators[0]
                        vote = Vote(VoteType.PREVOTE, height, 0, None, 1, me.address, 0)
                        forged = dataclasses.replace(vote, signature=PrivateKey.generate().sign(
                            vote.sign_bytes(node.chain.chain_id)))
                        payload = encode(["vote", forged.to_obj()])
                    await peer.send(node.network.peer_id, protocol, payload)
                    await wait_for(lambda p=peer: any(
                        p.peer_id in r.getMessage() and "disconnecting" in r.getMessage()
                        for r in caplog.records), timeout=10)
                    inner.cancel_scope.cancel()
                assert node.chain.height >= 1, label
        messages = [r.getMessage() for r in caplog.records if "disconnecting" in r.getMessage()]
        assert any("undecodable message" in m for m in messages)
        assert any("invalid signature" in m for m in messages)
        assert any("fails check_tx" in m for m in messages)
        nursery.cancel_scope.cancel()
