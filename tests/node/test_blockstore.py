"""Block store round trips, and that a block and its state land in ONE batch."""

from __future__ import annotations

import hashlib

import plyvel
import pytest

from node.blockstore import BlockStore, BlockStoreError, TxLocation
from state.store import MemoryDB, MerkleStore


def block_parts(height: int, ntx: int = 3) -> dict:
    txs = [b"tx-%d-%d" % (height, i) for i in range(ntx)]
    return {
        "height": height,
        "block_hash": hashlib.sha256(b"block-%d" % height).digest(),
        "block_bytes": b"block-body-%d" % height,
        "commit_bytes": b"commit-%d" % height,
        "results": [b"ok-" + tx for tx in txs],
        "tx_hashes": [hashlib.sha256(tx).digest() for tx in txs],
    }


@pytest.fixture(params=["memory", "leveldb"])
def db(request, tmp_path):
    if request.param == "memory":
        yield MemoryDB()
        return
    database = plyvel.DB(str(tmp_path / "db"), create_if_missing=True)
    yield database
    database.close()


def save_with_state(blocks: BlockStore, state: MerkleStore, **parts) -> bytes:
    """What the chain does: stage the block, stage the state commit in its batch, write both."""
    pending = blocks.stage_block(**parts)
    return blocks.write_block(pending, state.commit(pending.batch))


def test_round_trip_and_reopen(db):
    state = MerkleStore(db, prefix=b"s/")
    state.commit()  # genesis is version 0
    blocks = BlockStore(db, prefix=b"b/")
    assert blocks.latest_height() == -1 and blocks.latest() is None and blocks.seen_commit() is None
    app_hashes = []
    for height in range(1, 5):
        state.set(b"height", b"%d" % height)
        app_hashes.append(save_with_state(blocks, state, **block_parts(height)))
    assert app_hashes[-1] == state.root_hash() and state.version == 4

    reopened = BlockStore(db, prefix=b"b/")
    latest = reopened.latest()
    assert latest is not None and latest.height == 4 and latest.app_hash == app_hashes[-1]
    parts = block_parts(2)
    assert reopened.block(2) == parts["block_bytes"]
    assert reopened.block_by_hash(parts["block_hash"]) == parts["block_bytes"]
    assert reopened.height_of(parts["block_hash"]) == 2
    assert reopened.commit(2) == parts["commit_bytes"]
    assert reopened.results(2) == parts["results"]
    assert reopened.tx(parts["tx_hashes"][1]) == TxLocation(2, 1, parts["results"][1])
    assert reopened.seen_commit() == (4, block_parts(4)["commit_bytes"])
    assert reopened.block(5) is None and reopened.results(5) is None and reopened.commit(5) is None
    assert reopened.tx(b"\x00" * 32) is None and reopened.block_by_hash(b"nope") is None
    assert MerkleStore(db, prefix=b"s/").root_at(2) == app_hashes[1]


def test_empty_block_has_empty_results(db):
    blocks = BlockStore(db)
    blocks.save_block(**block_parts(1, ntx=0), app_hash=b"\x01" * 32)
    assert blocks.results(1) == []
    assert blocks.latest().app_hash == b"\x01" * 32


def test_one_batch_per_block():
    db = MemoryDB()
    state = MerkleStore(db)
    state.commit()
    before = db.batches_written
    blocks = BlockStore(db)
    state.set(b"k", b"v")
    save_with_state(blocks, state, **block_parts(1))
    assert db.batches_written == before + 1


def test_rejects_bad_blocks_before_writing_anything():
    db = MemoryDB()
    state = MerkleStore(db)
    state.commit()
    blocks = BlockStore(db)
    save_with_state(blocks, state, **block_parts(1))
    size = len(db)
    with pytest.raises(BlockStoreError, match="does not follow"):
        save_with_state(blocks, state, **block_parts(3))
    parts = block_parts(2)
    parts["results"] = parts["results"][:-1]
    with pytest.raises(BlockStoreError, match="results"):
        save_with_state(blocks, state, **parts)
    parts = block_parts(2)
    parts["block_hash"] = block_parts(1)["block_hash"]
    with pytest.raises(BlockStoreError, match="already stored"):
        save_with_state(blocks, state, **parts)
    assert len(db) == size and state.version == 1
