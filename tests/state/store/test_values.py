"""Values in per-key slots (stores created keeping 1 to MAX_RING versions): history reads,
pruning, reopening, against a store that keeps every version in the versioned layout."""

from __future__ import annotations

import random

import pytest

from primitives import codec
from state.store import (
    MemoryDB,
    MerkleStore,
    PrunedVersionError,
    StoreCorruptionError,
    verify_proof,
)
from state.store.layout import MAX_RING


def value_entries(db: MemoryDB, key: bytes) -> list[bytes]:
    return [k for k, _ in db.iterator(prefix=b"s/v" + key + b"\x00\x00")]


@pytest.mark.parametrize("keep", [1, 2, 3, 5])
def test_every_kept_version_reads_as_a_store_that_keeps_all(keep):
    """Updates, deletes and keys created again soon after their deletion (a new set of
    slots while the old one still serves older versions), checked at every kept version
    after every commit: get_at, iterate, proofs."""
    db = MemoryDB()
    store = MerkleStore(db, keep_versions=keep)
    reference = MerkleStore(MemoryDB())  # versioned, keeps all
    assert store.ring == keep and reference.ring == 0
    rng = random.Random(keep)
    keys = [b"k%d" % i for i in range(40)] + [b"k\x00%d" % i for i in range(5)]
    for _ in range(30):
        for _ in range(rng.randrange(1, 25)):
            key = rng.choice(keys)
            if rng.random() < 0.3:
                store.delete(key)
                reference.delete(key)
            else:
                value = rng.randbytes(rng.randrange(0, 4))
                store.set(key, value)
                reference.set(key, value)
        assert store.commit() == reference.commit()
        assert store.oldest_version == max(0, store.version - keep + 1)
        for version in range(store.oldest_version, store.version + 1):
            root = store.root_at(version)
            for key in keys:
                value = reference.get_at(version, key)
                assert store.get_at(version, key) == value, (version, key)
                if rng.random() < 0.1:
                    assert verify_proof(root, key, value, store.prove(key, version))
        assert list(store.iterate()) == list(reference.iterate())
        assert list(store.iterate(b"k1", b"k3")) == list(reference.iterate(b"k1", b"k3"))
        for key in keys:  # at most the slots of the current creation and of a deleted one
            assert len(value_entries(db, key)) <= 2 * keep
        if store.oldest_version > 0:
            with pytest.raises(PrunedVersionError):
                store.get_at(store.oldest_version - 1, keys[0])


def test_an_update_overwrites_a_slot_and_deletes_nothing():
    db = MemoryDB()
    store = MerkleStore(db, keep_versions=2)
    for round_ in range(6):
        store.set(b"a", b"%d" % round_)
        batch = db.write_batch()
        store.commit(batch)
        deletes = [key for key, value in batch._ops if value is None]
        assert not [key for key in deletes if key.startswith(b"s/v")]
        batch.write()
        assert len(value_entries(db, b"a")) == min(round_ + 1, 2)
    assert store.get_at(4, b"a") == b"4" and store.get(b"a") == b"5"


def test_pruning_removes_a_deleted_keys_slots():
    db = MemoryDB()
    store = MerkleStore(db, keep_versions=3)
    for round_ in range(4):
        store.set(b"gone", b"%d" % round_)
        store.set(b"stays", b"x")
        store.commit()
    assert len(value_entries(db, b"gone")) == 3
    store.delete(b"gone")
    store.commit()
    deleted_at = store.version
    assert store.get_at(deleted_at - 1, b"gone") == b"3" and store.get(b"gone") is None
    assert len(value_entries(db, b"gone")) == 3  # the tombstone took the next slot
    for _ in range(2):
        store.set(b"stays", b"y%d" % store.version)
        store.commit()
    assert store.oldest_version == deleted_at
    assert value_entries(db, b"gone") == []  # nothing reads them any more
    assert store.get(b"stays") == b"y%d" % (store.version - 1)


def test_the_layout_is_fixed_when_the_store_is_created():
    db = MemoryDB()
    store = MerkleStore(db, keep_versions=3)
    store.set(b"a", b"1")
    store.commit()
    assert MerkleStore(db, keep_versions=2).ring == 3  # keeping fewer versions is fine
    for keep in (0, 4):
        with pytest.raises(ValueError, match="3 slots per key"):
            MerkleStore(db, keep_versions=keep)
    versioned_db = MemoryDB()
    versioned = MerkleStore(versioned_db)
    versioned.set(b"a", b"1")
    versioned.commit()
    again = MerkleStore(versioned_db, keep_versions=2)  # versioned values, pruned by deletes
    assert again.ring == 0
    for round_ in range(3):
        again.set(b"a", b"%d" % round_)
        again.commit()
    assert len(value_entries(versioned_db, b"a")) == 2
    assert MerkleStore(MemoryDB(), keep_versions=MAX_RING + 1).ring == 0


def test_a_store_of_the_earlier_layout_is_refused():
    """Metadata of two fields was written before thin node records: its nodes would be
    misread, so the store refuses to open rather than compute wrong roots."""
    db = MemoryDB()
    store = MerkleStore(db)
    store.set(b"a", b"1")
    store.commit()
    assert MerkleStore(db).version == 0
    db.put(b"s/m", codec.encode([0, 0]))
    with pytest.raises(StoreCorruptionError, match="earlier layout"):
        MerkleStore(db)
