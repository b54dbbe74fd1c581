"""Thin node records: the database holds nodes without their leaves' key hashes (hks), kept
per path for the latest tree in the ``x`` table. These tests read the database directly."""

from __future__ import annotations

import hashlib
import random

from state.store import MemoryDB, MerkleStore, verify_proof
from state.store.layout import (
    INTERNAL,
    LEAF,
    decode_root,
    node_path,
    read_thin_slot,
    slot_index,
)

PREFIX = b"s/"


def root_of(contents: dict[bytes, bytes]) -> bytes:
    store = MerkleStore(MemoryDB())
    for key, value in contents.items():
        store.set(key, value)
    return store.commit()


def latest_nodes(db: MemoryDB, store: MerkleStore) -> dict[bytes, tuple[bytes, list[bytes]]]:
    """path -> (thin record, hks of its leaf children found below it) of the latest tree,
    walked from the root record with nothing but the database's thin records."""
    found: dict[bytes, tuple[bytes, list[bytes]]] = {}
    root = decode_root(db.get(PREFIX + b"r" + store.version.to_bytes(8, "big")))

    def walk(version8: bytes, depth: int, hk_prefix: bytes) -> None:
        path = node_path(depth, hk_prefix)
        record = db.get(PREFIX + b"n" + version8 + path)
        assert record is not None
        width = 2 if record[0] == 1 else 32
        count = int.from_bytes(record[1 : 1 + width], "big").bit_count()
        assert len(record) == 1 + 2 * width + 40 * count  # thin: no hks stored with the node
        leaves = []
        for index in range(16 if width == 2 else 256):
            kind, _, child8 = read_thin_slot(record, index)
            if kind == INTERNAL:
                walk(child8, depth + 1, child_prefix(hk_prefix, depth, index))
            elif kind == LEAF:
                leaves.append(index)
        found[path] = (record, leaves)

    if root[0] == INTERNAL:
        walk(root[2], 0, bytes(32))
    return found


def child_prefix(hk: bytes, depth: int, index: int) -> bytes:
    """An hk (zero-padded) that reaches slot ``index`` of the node at ``depth`` on ``hk``'s path."""
    out = bytearray(hk)
    if depth < 4:
        byte = depth >> 1
        out[byte] = (out[byte] & 0xF0) | index if depth & 1 else (index << 4) | (out[byte] & 0x0F)
    else:
        out[depth - 2] = index
    return bytes(out)


def check_hks_table(db: MemoryDB, store: MerkleStore, live: set[bytes]) -> int:
    """Every latest node has its hks under x/path, one per leaf child, in slot order, and
    together they are the live keys' hks; the x table holds nothing else. Returns the number
    of latest nodes."""
    nodes = latest_nodes(db, store)
    stored = {k[len(PREFIX) + 1 :]: v for k, v in db.iterator(prefix=PREFIX + b"x")}
    assert set(stored) == set(nodes)  # no entry of a vanished node is left behind
    found = []
    for path, (_, leaves) in nodes.items():
        hks = stored[path]
        assert len(hks) == 32 * len(leaves)
        depth = path[0]
        for i, index in enumerate(leaves):
            hk = hks[32 * i : 32 * i + 32]
            assert slot_index(hk, depth) == index
            assert node_path(depth, hk) == path
            found.append(hk)
    if nodes:
        assert sorted(found) == sorted(hashlib.sha256(key).digest() for key in live)
    return len(nodes)


def test_the_database_holds_thin_records_and_the_latest_hks_exactly():
    """Creates, splits, value updates, deletes that collapse nodes: after every commit the
    x table is exactly the latest tree's hks (none stale, none missing)."""
    db = MemoryDB()
    store = MerkleStore(db, prefix=PREFIX, keep_versions=2)
    rng = random.Random(5)
    model: dict[bytes, bytes] = {}
    for round_ in range(12):
        for _ in range(400):
            key = b"%d" % rng.randrange(1500)
            if round_ >= 4 and rng.random() < 0.4:
                store.delete(key)
                model.pop(key, None)
            else:
                value = rng.randbytes(6)
                store.set(key, value)
                model[key] = value
        assert store.commit() == root_of(model)
        assert check_hks_table(db, store, set(model)) > 0
    for key in list(model):
        store.delete(key)
    store.commit()
    assert check_hks_table(db, store, set()) == 0
    assert list(db.iterator(prefix=PREFIX + b"x")) == []


class CountingDB(MemoryDB):
    """Counts reads of the hks table."""

    hks_reads = 0

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:
        if key.startswith(PREFIX + b"x"):
            self.hks_reads += 1
        return super().get(key, default)


def test_a_leaf_replaced_by_another_keys_leaf_in_one_commit():
    """Deleting a key and creating another in the same slot in one commit swaps one leaf for
    another in place: the node's hks must follow (in the database and in the cache)."""
    db = MemoryDB()
    store = MerkleStore(db, prefix=PREFIX)
    a, b = keys_sharing_hash_prefix(0, 2, nibble=True)
    others = [
        key
        for key in (b"c%d" % i for i in range(200))
        if hashlib.sha256(key).digest()[0] >> 4 != hashlib.sha256(a).digest()[0] >> 4
    ][:3]
    for key in [a, *others]:
        store.set(key, b"1")
    store.commit()
    store.delete(a)
    store.set(b, b"2")
    store.commit()
    check_hks_table(db, store, {b, *others})
    store.set(b, b"3")  # through the cached record: must find b's leaf where a's was
    assert store.commit() == root_of({b: b"3", **{key: b"1" for key in others}})
    cold = MerkleStore(db, prefix=PREFIX)
    cold.set(b, b"4")
    assert cold.commit() == root_of({b: b"4", **{key: b"1" for key in others}})


def test_uncached_stores_rebuild_whole_records_from_the_database():
    """A store that caches no node (cache_depth=-1) and stores reopened cold read every node
    as thin record + hks: their roots and proofs equal a fully cached store's."""
    cached_db, cold_db = MemoryDB(), CountingDB()
    cached = MerkleStore(cached_db)
    cold = MerkleStore(cold_db, cache_depth=-1)
    rng = random.Random(8)
    model: dict[bytes, bytes] = {}
    for round_ in range(10):
        if round_ % 3 == 2:
            cold = MerkleStore(cold_db, cache_depth=-1)  # reopened
        for _ in range(300):
            key = b"k%d" % rng.randrange(2000)
            if rng.random() < 0.3:
                for store in (cached, cold):
                    store.delete(key)
                model.pop(key, None)
            else:
                value = rng.randbytes(5)
                for store in (cached, cold):
                    store.set(key, value)
                model[key] = value
        root = cached.commit()
        reads = cold_db.hks_reads
        assert cold.commit() == root == root_of(model)
        assert cold_db.hks_reads > reads or round_ == 0  # the nodes came from the database
        for i in rng.sample(range(2000), 30):
            key = b"k%d" % i
            proof = cold.prove(key)
            assert proof == cached.prove(key)
            assert verify_proof(root, key, model.get(key), proof)


def keys_sharing_hash_prefix(prefix_bytes: int, count: int, nibble: bool = False) -> list[bytes]:
    """``count`` keys whose sha256 all begin with the same ``prefix_bytes`` bytes (and, with
    ``nibble``, the same high nibble of the next byte)."""
    groups: dict[bytes, list[bytes]] = {}
    i = 0
    while True:
        key = b"share-%d" % i
        digest = hashlib.sha256(key).digest()
        prefix = digest[:prefix_bytes] + (bytes((digest[prefix_bytes] >> 4,)) if nibble else b"")
        group = groups.setdefault(prefix, [])
        group.append(key)
        if len(group) == count:
            return group
        i += 1


def test_older_versions_prove_through_the_key_index():
    """Older trees are read thin: the leaf at the end of a path is identified through the
    ``k`` index (all keys ever created with that hash prefix, dead ones included) by its
    hash. Proofs of presence and absence at every kept version verify against that
    version's root, for keys whose hashes share their first two bytes."""
    group = keys_sharing_hash_prefix(2, 4)  # all four meet below level 3
    store = MerkleStore(MemoryDB(), keep_versions=0)
    others = {b"o%d" % i: b"x%d" % i for i in range(300)}
    history: list[dict[bytes, bytes]] = []
    contents: dict[bytes, bytes] = dict(others)
    steps = [
        {group[0]: b"a"},  # alone under its prefix: a leaf high up
        {group[1]: b"b"},  # splits it
        {group[0]: None},  # collapses back: group[1]'s leaf moves up; group[0] is dead
        {group[2]: b"c", group[1]: b"b2"},
        {group[1]: None, group[2]: None, group[3]: b"d"},
    ]
    for step in steps:
        for key, value in step.items():
            if value is None:
                store.delete(key)
                contents.pop(key, None)
            else:
                store.set(key, value)
                contents[key] = value
        store.commit()
        history.append(dict(contents))
    for version, expected in enumerate(history):
        root = store.root_at(version)
        for key in group + [b"never-%d" % i for i in range(40)]:
            proof = store.prove(key, version)
            assert verify_proof(root, key, expected.get(key), proof), (version, key)
            if key in expected:
                assert store.get_at(version, key) == expected[key]
