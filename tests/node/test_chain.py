"""The execution pipeline: blocks execute, store atomically, and a forked state halts."""

from __future__ import annotations

import plyvel
import pytest

from primitives.crypto import PrivateKey, Signer
from primitives.hashing import sha256
from node.chain import AppHashMismatch, Chain, ChainHalted
from node.storage_failure import StorageFailure
from node.init import DEFAULT_VALIDATOR_POWER, default_genesis_path
from localnet.synthetic import append_block, next_block, sign_commit
from state.builders import build_transfer_tx
from state.genesis import load_genesis, parse_genesis, validator_entry
from state.store import MemoryDB
from state.store.memdb import MemoryBatch

KEYS = [PrivateKey(bytes([i + 1]) * 32) for i in range(4)]
SIGNERS = {Signer(k).address: Signer(k) for k in KEYS}
T0 = 1_800_000_000_000


def genesis():  # type: ignore[no-untyped-def]
    document = load_genesis(default_genesis_path()).to_dict()
    document["validators"] = [validator_entry(f"v{i}", k.public_key, DEFAULT_VALIDATOR_POWER)
                               for i, k in enumerate(KEYS)]
    return parse_genesis(document)


def transfer(i: int, height: int) -> bytes:
    return build_transfer_tx(Signer(KEYS[0]), "clearchain-local-1", KEYS[1].address, "USDC",
                             1 + i, fee=1000, expiry=height + 100)


def test_blocks_execute_store_and_index_txs() -> None:
    chain = Chain(MemoryDB(), genesis())
    genesis_hash = chain.app_hash
    txs = [transfer(i, 1) for i in range(3)]
    executed = append_block(chain, SIGNERS, txs, T0)
    assert chain.height == 1 and executed.app_hash == chain.app_hash != genesis_hash
    assert [r.code for r in executed.results] == [0, 0, 0]
    location = chain.blocks.tx(sha256(txs[1]))
    assert (location.height, location.index) == (1, 1)
    assert chain.block(1).txs == tuple(txs)
    assert chain.commit(1).block_id == executed.block.block_id()
    append_block(chain, SIGNERS, [], T0 + 100)
    assert chain.block(2).header.app_hash == executed.app_hash


def test_same_blocks_give_same_state_on_every_node() -> None:
    a, b = Chain(MemoryDB(), genesis()), Chain(MemoryDB(), genesis())
    for height in range(1, 6):
        executed = append_block(a, SIGNERS, [transfer(height, height)], T0 + height)
        b.execute(executed.block, executed.commit)
        assert a.app_hash == b.app_hash
        assert a.results_hash(height) == b.results_hash(height)


def test_app_hash_mismatch_halts_with_height_and_both_hashes() -> None:
    chain = Chain(MemoryDB(), genesis())
    append_block(chain, SIGNERS, [], T0)
    forged = next_block(chain, [], T0 + 1, app_hash=b"\x66" * 32)
    commit = sign_commit(chain.chain_id, chain.validators(2), SIGNERS, 2, forged.block_id(), T0 + 1)
    with pytest.raises(AppHashMismatch) as info:
        chain.execute(forged, commit)
    message = str(info.value)
    assert "block 2" in message and "66" * 32 in message and chain.app_hash.hex() in message
    assert chain.height == 1  # nothing half-written


def test_reopening_the_database_resumes_at_the_stored_height() -> None:
    db = MemoryDB()
    chain = Chain(db, genesis())
    for height in range(1, 4):
        append_block(chain, SIGNERS, [transfer(height, height)], T0 + height)
    reopened = Chain(db, genesis())
    assert (reopened.height, reopened.app_hash) == (3, chain.app_hash)
    assert reopened.validators(5) == chain.validators(5)


def test_a_keep_recent_the_store_cannot_hold_halts_with_the_setting_named() -> None:
    db = MemoryDB()
    chain = Chain(db, genesis(), keep_recent=3)
    append_block(chain, SIGNERS, [transfer(1, 1)], T0 + 1)
    for keep_recent in (0, 50):  # keep everything, or more than the store's value slots hold
        with pytest.raises(ChainHalted, match=f"storage.keep_recent = {keep_recent} does not fit"):
            Chain(db, genesis(), keep_recent=keep_recent)
    assert Chain(db, genesis(), keep_recent=2).height == 1  # fewer is fine


def test_executing_out_of_order_is_refused() -> None:
    chain = Chain(MemoryDB(), genesis())
    executed = append_block(chain, SIGNERS, [], T0)
    with pytest.raises(ChainHalted):
        chain.execute(executed.block, executed.commit)


class FillingDB(MemoryDB):
    """A store whose disk fills up: once ``full``, a batch write fails as LevelDB's does on a
    full disk (plyvel's IOError, errno only in its text) and writes nothing."""

    full = False

    def write_batch(self, transaction: bool = False, sync: bool = False) -> MemoryBatch:
        return _FillingBatch(self, transaction)


class _FillingBatch(MemoryBatch):
    _db: FillingDB

    def write(self) -> None:
        if self._db.full:
            raise plyvel.IOError(b"IO error: /h/data/store/000005.log: No space left on device")
        super().write()


def test_a_block_write_failing_for_space_stops_the_chain_with_nothing_half_written() -> None:
    db = FillingDB()
    chain = Chain(db, genesis(), store_path="/h/data/store")
    append_block(chain, SIGNERS, [transfer(1, 1)], T0)
    stored, stored_hash = dict(db._data), chain.app_hash
    block = next_block(chain, [transfer(2, 2)], T0 + 1)
    commit = sign_commit(chain.chain_id, chain.validators(2), SIGNERS, 2, block.block_id(), T0 + 1)
    db.full = True
    with pytest.raises(StorageFailure) as info:
        chain.execute(block, commit)
    failure = info.value
    assert failure.disk_full and failure.height == 2 and failure.path == "/h/data/store"
    assert str(failure) == ("STORAGE FAILURE at height 2: writing block 2 and its state to "
                            "/h/data/store failed: disk full (ENOSPC): free space and restart")
    assert dict(db._data) == stored and chain.height == 1  # the block and its state: neither
    db.full = False  # space freed: this chain's app is a block ahead of its store, it stays down
    with pytest.raises(StorageFailure):
        chain.execute(block, commit)
    assert dict(db._data) == stored
    restarted = Chain(db, genesis())  # a restart reads the store: height 1, and goes on
    assert (restarted.height, restarted.app_hash) == (1, stored_hash)
    assert restarted.execute(block, commit).app_hash == restarted.app_hash
    assert restarted.height == 2 and restarted.block(2) == block
