"""The Merkle store against the reference MemoryStore, and its root's independence of order."""

from __future__ import annotations

import hashlib
import random

import plyvel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from state.kv import EMPTY_ROOT, MemoryStore
from state.store import (
    MemoryDB,
    MerkleStore,
    PrunedVersionError,
    StoreCorruptionError,
    UnknownVersionError,
    verify_proof,
)
from state.store.layout import node_path

keys = st.binary(min_size=0, max_size=6)
values = st.binary(min_size=0, max_size=12)
ops = st.lists(st.tuples(keys, st.one_of(st.none(), values)), max_size=60)


def fresh(**kwargs) -> MerkleStore:
    return MerkleStore(MemoryDB(), **kwargs)


def root_of(contents: dict[bytes, bytes]) -> bytes:
    store = fresh()
    for key, value in contents.items():
        store.set(key, value)
    return store.commit()


@settings(max_examples=150, deadline=None)
@given(batches=st.lists(ops, max_size=6), seed=st.integers(0, 2**32))
def test_root_depends_only_on_contents(batches, seed):
    """Any split into commits, any order, with deletes in between: same contents, same root."""
    store = fresh()
    model: dict[bytes, bytes] = {}
    for batch in batches:
        for key, value in batch:
            if value is None:
                store.delete(key)
                model.pop(key, None)
            else:
                store.set(key, value)
                model[key] = value
        store.commit()
    shuffled = list(model.items())
    random.Random(seed).shuffle(shuffled)
    assert store.root_hash() == root_of(dict(shuffled))


@settings(max_examples=100, deadline=None)
@given(batches=st.lists(ops, max_size=5), probe=st.lists(keys, max_size=10))
def test_reads_match_the_reference_store(batches, probe):
    """get and iterate see committed + pending exactly as the reference MemoryStore does."""
    store, reference = fresh(), MemoryStore()
    for index, batch in enumerate(batches):
        for key, value in batch:
            for target in (store, reference):
                if value is None:
                    target.delete(key)
                else:
                    target.set(key, value)
        if index % 2 == 0:  # leave some batches pending while reading
            store.commit()
            reference.commit()
            assert store.version == reference.version
        for key in probe + [k for k, _ in batch]:
            assert store.get(key) == reference.get(key)
        assert list(store.iterate()) == list(reference.iterate())
        bounds = sorted(probe[:2]) if len(probe) >= 2 else [b"", None]
        assert list(store.iterate(*bounds)) == list(reference.iterate(*bounds))


def test_versions_and_empty_root():
    store = fresh()
    assert store.version == -1 and store.root_hash() == EMPTY_ROOT
    assert store.commit() == EMPTY_ROOT and store.version == 0
    store.set(b"a", b"1")
    root = store.commit()
    assert store.version == 1 and root != EMPTY_ROOT
    store.delete(b"a")
    assert store.commit() == EMPTY_ROOT


def test_rewriting_the_same_value_changes_nothing():
    store = fresh()
    store.set(b"a", b"1")
    store.set(b"b", b"2")
    root = store.commit()
    store.set(b"a", b"1")
    store.delete(b"never-there")
    assert store.commit() == root
    assert store.get_at(1, b"a") == b"1"


def test_leaves_split_and_merge_back():
    """Keys sharing long hash prefixes force deep paths; deleting them collapses the path."""
    store = fresh()
    base = {b"key-%d" % i: b"v" for i in range(3000)}
    for key, value in base.items():
        store.set(key, value)
    root = store.commit()
    for i in range(3000, 6000):
        store.set(b"key-%d" % i, b"w")
    store.commit()
    for i in range(3000, 6000):
        store.delete(b"key-%d" % i)
    assert store.commit() == root == root_of(base)


def test_history_and_pruning_errors():
    store = fresh(keep_versions=3)
    for version in range(6):
        store.set(b"k", b"%d" % version)
        store.set(b"only-%d" % version, b"x")
        if version == 4:
            store.delete(b"only-2")
        store.commit()
    assert store.version == 5 and store.oldest_version == 3
    assert [store.get_at(v, b"k") for v in (3, 4, 5)] == [b"3", b"4", b"5"]
    assert store.get_at(3, b"only-2") == b"x" and store.get_at(4, b"only-2") is None
    assert store.get_at(3, b"only-4") is None and store.get_at(5, b"only-4") == b"x"
    with pytest.raises(PrunedVersionError, match="version 2 has been pruned.*last 3 versions"):
        store.get_at(2, b"k")
    with pytest.raises(PrunedVersionError):
        store.prove(b"k", version=0)
    with pytest.raises(UnknownVersionError, match="latest committed is 5"):
        store.get_at(6, b"k")
    with pytest.raises(UnknownVersionError):
        store.root_at(-1)


def test_pruning_deletes_old_records_and_keeps_history_exact():
    """With keep=2 the database shrinks to what the last two versions need; reads agree."""
    db, unpruned_db = MemoryDB(), MemoryDB()
    store = MerkleStore(db, keep_versions=2)
    unpruned = MerkleStore(unpruned_db)
    rng = random.Random(7)
    for _ in range(40):
        for _ in range(30):
            key = b"%d" % rng.randrange(200)
            if rng.random() < 0.2:
                store.delete(key)
                unpruned.delete(key)
            else:
                value = rng.randbytes(8)
                store.set(key, value)
                unpruned.set(key, value)
        assert store.commit() == unpruned.commit()
    for version in (store.version - 1, store.version):
        assert store.root_at(version) == unpruned.root_at(version)
        for i in range(200):
            assert store.get_at(version, b"%d" % i) == unpruned.get_at(version, b"%d" % i)
    assert list(store.iterate()) == list(unpruned.iterate())
    # Per key: its k index entry and its two value slots (the last two writes); then nodes.
    assert store.ring == 2
    assert len(list(db.iterator(prefix=b"s/v"))) <= 2 * 200
    assert len(db) < len(unpruned_db) / 3
    # A store reopened on the pruned database still reads and proves the kept versions.
    reopened = MerkleStore(db, keep_versions=2)
    assert reopened.oldest_version == store.version - 1
    assert reopened.get_at(store.version - 1, b"5") == unpruned.get_at(store.version - 1, b"5")


def test_reopen_on_leveldb_keeps_everything(tmp_path):
    db = plyvel.DB(str(tmp_path / "db"), create_if_missing=True)
    try:
        store = MerkleStore(db, prefix=b"s/", keep_versions=0)
        for version in range(3):
            for i in range(500):
                store.set(b"%d" % i, b"%d-%d" % (i, version))
            store.commit()
        store.set(b"pending", b"lost")  # never committed
        root = store.root_hash()
        reopened = MerkleStore(db, prefix=b"s/")
        assert reopened.version == 2 and reopened.root_hash() == root
        assert reopened.get(b"pending") is None
        assert reopened.get(b"7") == b"7-2" and reopened.get_at(0, b"7") == b"7-0"
        reopened.set(b"7", b"new")
        assert reopened.commit() != root
        assert list(db.iterator(prefix=b"x")) == []  # nothing outside the prefix
    finally:
        db.close()


def test_commit_into_callers_batch_writes_nothing_itself():
    db = MemoryDB()
    store = MerkleStore(db)
    store.set(b"a", b"1")
    batch = db.write_batch()
    root = store.commit(batch)
    assert len(db) == 0 and len(batch) > 0
    batch.write()
    assert MerkleStore(db).root_hash() == root


def test_rejects_non_bytes():
    store = fresh()
    with pytest.raises(TypeError):
        store.set("a", b"1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.set(b"a", 1)  # type: ignore[arg-type]


def keys_sharing_hash_prefix(prefix_bytes: int, pairs: int) -> list[bytes]:
    """Keys whose sha256 share their first bytes in pairs: they sit below the wide levels."""
    seen: dict[bytes, bytes] = {}
    found: list[bytes] = []
    i = 0
    while len(found) < 2 * pairs:
        key = b"deep-%d" % i
        prefix = hashlib.sha256(key).digest()[:prefix_bytes]
        if prefix in seen:
            found += [seen.pop(prefix), key]
        else:
            seen[prefix] = key
        i += 1
    return found


def test_deep_paths_through_wide_levels_prove_and_collapse():
    deep = keys_sharing_hash_prefix(3, 4)  # equal up to level 4: they meet in a level-5 node
    store = fresh()
    contents = {key: b"v-" + key for key in deep}
    contents.update({b"other-%d" % i: b"x" for i in range(500)})
    for key, value in contents.items():
        store.set(key, value)
    root = store.commit()
    for key in deep:
        proof = store.prove(key)
        assert len(proof[0]) >= 6 and len(proof[0][5][0]) == 32  # a wide bitmap on the path
        assert verify_proof(root, key, contents[key], proof)
        assert not verify_proof(root, key, None, proof)
    assert hashlib.sha256(deep[0]).digest()[:3] == hashlib.sha256(deep[1]).digest()[:3]
    store.delete(deep[1])
    del contents[deep[1]]
    assert store.commit() == root_of(contents)
    assert verify_proof(store.root_hash(), deep[1], None, store.prove(deep[1]))
    assert verify_proof(store.root_hash(), deep[0], contents[deep[0]], store.prove(deep[0]))


def test_incremental_roots_equal_fresh_builds_at_scale():
    """20k keys, commits that insert, overwrite and delete (collapsing wide nodes), checked
    against a tree built in one go, with proofs for a sample of present and absent keys."""
    rng = random.Random(11)
    store = fresh(keep_versions=3)
    model: dict[bytes, bytes] = {}
    for round_ in range(6):
        for _ in range(6000):
            key = b"k%d" % rng.randrange(20_000)
            if round_ >= 3 and rng.random() < 0.5:
                store.delete(key)
                model.pop(key, None)
            else:
                value = b"%d" % rng.randrange(10**9)
                store.set(key, value)
                model[key] = value
        root = store.commit()
        assert root == root_of(model)
        for i in rng.sample(range(20_000), 40):
            key = b"k%d" % i
            assert verify_proof(root, key, model.get(key), store.prove(key))


def test_commit_leaves_the_garbage_collector_as_it_found_it():
    """The commit pauses the cyclic GC for speed; it must restore it, even when it fails."""
    import gc

    store = fresh()
    assert gc.isenabled()
    store.set(b"a", b"1")
    store.commit()
    assert gc.isenabled()
    gc.disable()
    try:
        store.set(b"b", b"2")
        store.commit()
        assert not gc.isenabled()
    finally:
        gc.enable()

    class FailingBatch:
        def put(self, key: bytes, value: bytes) -> None:
            raise OSError("disk full")

        def delete(self, key: bytes) -> None:
            raise OSError("disk full")

    store.set(b"c", b"3")
    with pytest.raises(OSError):
        store.commit(FailingBatch())  # type: ignore[arg-type]
    assert gc.isenabled()


def test_a_commit_that_fails_halfway_leaves_the_tree_as_it_was():
    """The update writes new nodes into the node cache as it goes: a commit that fails after
    some of them (here: a node missing from the database) must not leave them behind, or
    a retry would take the half-applied nodes for the tree's current ones."""
    db = MemoryDB()
    store = MerkleStore(db)
    contents = {b"%d" % i: b"old" for i in range(3000)}
    for key, value in contents.items():
        store.set(key, value)
    store.commit()
    reopened = MerkleStore(db)  # empty cache: the update loads nodes as it descends
    for key in contents:
        reopened.set(key, b"new")
        contents[key] = b"new"
    # The level-1 node under the last nibble is loaded after the other 15 level-1 subtrees
    # have been rewritten (the update walks in key-hash order).
    last = max(hashlib.sha256(key).digest() for key in contents)
    node_key = b"s/n" + (0).to_bytes(8, "big") + node_path(1, last)
    record = db.get(node_key)
    assert record is not None
    db.delete(node_key)
    with pytest.raises(StoreCorruptionError):
        reopened.commit()
    assert reopened.version == 0
    db.put(node_key, record)
    assert reopened.commit() == root_of(contents)
