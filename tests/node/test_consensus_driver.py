"""node/consensus_driver.py: when a height starts (the commit timeout, empty blocks or not)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import trio

from node.init import default_genesis_path
from node.config import Config, replace
from node.home import Home
from node.init import init_home
from node.node import Node
from primitives.crypto import PrivateKey, Signer
from primitives.hashing import sha256
from state.builders import build_transfer_tx
from tests.node.test_node_inprocess import wait_for


def solo(tmp_path: Path, *, staleness_ms: int, commit_ms: int, empty: bool) -> Node:
    document = json.loads(default_genesis_path().read_text())
    document["genesis_time_ms"] = int(time.time() * 1000)
    document["app_state"]["risk"]["oracle_staleness_ms"] = staleness_ms
    document["consensus_params"]["timeouts"]["commit_ms"] = commit_ms
    document["validators"] = []
    home = Home.at(tmp_path / "solo")
    config = replace(Config(), p2p={"listen_address": "/ip4/127.0.0.1/tcp/0"},
                     rpc={"listen_address": ""}, consensus={"create_empty_blocks": empty})
    init_home(home, moniker="solo", genesis=document, add_self_as_validator=True, config=config)
    return Node(home)


async def test_without_empty_blocks_a_block_waits_for_a_tx_or_the_oracle_clock(tmp_path: Path) -> None:
    node = solo(tmp_path, staleness_ms=2_000, commit_ms=50, empty=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.chain.height >= 1)
        prices = await node.view.prices(None)
        assert {p["status"] for p in prices.values()} == {"active"}
        # no txs: the next block comes when the genesis prices turn stale (2 s), and records it
        await wait_for(lambda: node.chain.height >= 2, timeout=10)
        assert {p["status"] for p in (await node.view.prices(None)).values()} == {"stale"}
        idle = node.chain.height
        await trio.sleep(2.5)  # nothing is due until funding (an hour): no block
        assert node.chain.height == idle
        signer = Signer(node.validator_key)
        tx = build_transfer_tx(signer, node.chain.chain_id, PrivateKey(b"\x09" * 32).address,
                               "USDC", 5, fee=1000, expiry=node.chain.height + 50)
        sent = trio.current_time()
        assert (await node.view.broadcast_tx(tx)).code == 0
        await wait_for(lambda: node.chain.blocks.tx(sha256(tx)) is not None, timeout=10)
        assert trio.current_time() - sent < 2.0  # a tx starts the height at once
        assert node.chain.height == idle + 1
        nursery.cancel_scope.cancel()


async def test_an_idle_chain_makes_a_block_per_commit_timeout_a_loaded_one_at_once(
        tmp_path: Path) -> None:
    node = solo(tmp_path, staleness_ms=30_000, commit_ms=1_000, empty=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.chain.height >= 1)
        height = node.chain.height
        await trio.sleep(3.2)
        made = node.chain.height - height
        assert 2 <= made <= 4, made  # ~1 block/s idle
        signer = Signer(node.validator_key)
        sent = trio.current_time()
        for nonce in range(3):
            tx = build_transfer_tx(signer, node.chain.chain_id, PrivateKey(b"\x09" * 32).address,
                                   "USDC", 5, fee=1000, expiry=node.chain.height + 50, nonce=nonce)
            assert (await node.view.broadcast_tx(tx)).code == 0
            await wait_for(lambda: node.chain.blocks.tx(sha256(tx)) is not None, timeout=10)  # noqa: B023
        assert trio.current_time() - sent < 2.0  # three blocks in a row, none waited a second
        nursery.cancel_scope.cancel()
