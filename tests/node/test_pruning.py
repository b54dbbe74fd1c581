"""storage.keep_blocks: old blocks, commits, results and tx index entries leave in the commit
batch; RPC names the lowest height still available."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from node.blockstore import BlockStore
from primitives.crypto import PrivateKey, Signer
from primitives.hashing import sha256
from rpc.client import AsyncClient, RPCClientError
from rpc.errors import UNAVAILABLE
from state.builders import build_transfer_tx
from state.store.memdb import MemoryDB
from tests.node.test_node_inprocess import make_node, wait_for


def test_the_block_store_prunes_below_a_height_in_the_new_blocks_batch() -> None:
    db = MemoryDB()
    store = BlockStore(db)
    txs = {h: [bytes([h, i]) for i in range(2)] for h in range(1, 11)}
    for h in range(1, 11):
        pending = store.stage_block(h, b"hash%d" % h, b"block%d" % h, b"commit%d" % h,
                                    [b"r"] * 2, [sha256(t) for t in txs[h]])
        pruned = store.stage_prune(pending, h - 3 + 1, lambda block: [
            sha256(t) for t in txs[int(block.removeprefix(b"block"))]])
        assert pruned == ([h - 3] if h > 3 else [])
        assert store.earliest_height() == (max(1, h - 3) if h > 1 else 0)  # not before the write
        store.write_block(pending, b"app")
        assert store.earliest_height() == max(1, h - 2)
    assert [h for h in range(1, 11) if store.block(h) is not None] == [8, 9, 10]
    for h in range(1, 8):
        assert store.commit(h) is None and store.results(h) is None
        assert store.height_of(b"hash%d" % h) is None
        assert all(store.tx(sha256(t)) is None for t in txs[h])
    assert store.tx(sha256(txs[9][1])).height == 9
    assert BlockStore(db).earliest_height() == 8  # reopened: read from the store
    assert BlockStore(MemoryDB()).earliest_height() == 0


def test_lowering_keep_blocks_prunes_a_bounded_number_of_heights_per_block() -> None:
    store = BlockStore(MemoryDB())
    for h in range(1, 201):
        store.save_block(h, b"h%d" % h, b"b", b"c", [], [], b"app")
    pending = store.stage_block(201, b"h201", b"b", b"c", [], [])
    assert store.stage_prune(pending, 200, lambda _: [], limit=64) == list(range(1, 65))
    store.write_block(pending, b"app")
    assert store.earliest_height() == 65 and store.block(64) is None and store.block(65) == b"b"


async def test_a_pruning_node_answers_below_its_earliest_height_with_a_clear_error(
        tmp_path: Path) -> None:
    node = make_node(tmp_path, storage={"keep_blocks": 5})
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        signer = Signer(node.validator_key)
        tx = build_transfer_tx(signer, node.chain.chain_id, PrivateKey(b"\x09" * 32).address,
                               "USDC", 5, fee=1000, expiry=node.chain.height + 50)
        await wait_for(lambda: node.chain.height >= 1)
        assert (await node.view.broadcast_tx(tx)).code == 0
        await wait_for(lambda: node.chain.blocks.tx(sha256(tx)) is not None)
        tx_height = node.chain.blocks.tx(sha256(tx)).height
        await wait_for(lambda: node.chain.height >= tx_height + 8)
        client = AsyncClient(f"http://127.0.0.1:{node.rpc_port}", timeout=5)
        status = await client.call("status")
        earliest = int(status["sync_info"]["earliest_block_height"])
        latest = int(status["sync_info"]["latest_block_height"])
        assert latest - 5 < earliest <= latest - 4 + 1 and earliest > tx_height
        for method in ("block", "commit", "block_results"):
            with pytest.raises(RPCClientError) as info:
                await client.call(method, height=tx_height)
            assert info.value.code == UNAVAILABLE
            assert f"lowest height is {earliest}" in str(info.value)
            assert (await client.call(method, height=earliest)) is not None
        with pytest.raises(RPCClientError):
            await client.call("tx", hash=sha256(tx).hex())  # its index entry went with the block
        metas = (await client.call("blockchain", minHeight=1, maxHeight=latest))["block_metas"]
        assert min(int(m["header"]["height"]) for m in metas) >= earliest
        await client.aclose()
        nursery.cancel_scope.cancel()
