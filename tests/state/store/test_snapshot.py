"""state/store/snapshot.py: chunked snapshots, a checked restore, bad chunks and lying peers."""

from __future__ import annotations

import hashlib

import pytest

from state.store import MemoryDB, MerkleStore
from state.store.snapshot import (
    BadChunk,
    Manifest,
    RestoreFailed,
    Restorer,
    SnapshotRejected,
    restore_from_peers,
    take_snapshot,
)


def filled_store(keys: int = 3000, versions: int = 5) -> MerkleStore:
    store = MerkleStore(MemoryDB())
    for v in range(versions):
        for i in range(v, keys, versions):
            store.set(b"k/%06d" % i, b"value %d at %d" % (i, v))
        store.commit()
    store.delete(b"k/000000")
    store.commit()
    return store


def test_a_snapshot_restores_the_same_root_at_the_same_version() -> None:
    source = filled_store()
    manifest, chunks = take_snapshot(source, chunk_bytes=4096)
    assert len(chunks) > 10 and Manifest.from_obj(manifest.to_obj()) == manifest
    target = MerkleStore(MemoryDB())
    restorer = Restorer(manifest, source.root_hash(), target)
    for index, chunk in enumerate(chunks):
        restorer.apply(index, chunk)
    assert restorer.finish() == source.root_hash()
    assert target.version == source.version == 5
    assert dict(target.iterate()) == dict(source.iterate())
    target.set(b"next", b"block")  # the restored store carries on at version + 1
    target.commit()
    assert target.version == 6


def test_a_manifest_for_another_state_is_rejected() -> None:
    source = filled_store(100)
    manifest, _ = take_snapshot(source)
    with pytest.raises(SnapshotRejected, match="verified app hash"):
        Restorer(manifest, hashlib.sha256(b"other").digest(), MerkleStore(MemoryDB()))


def test_a_bad_chunk_is_refused_and_leaves_the_restore_where_it_was() -> None:
    source = filled_store(500)
    manifest, chunks = take_snapshot(source, chunk_bytes=2048)
    restorer = Restorer(manifest, source.root_hash(), MerkleStore(MemoryDB()))
    restorer.apply(0, chunks[0])
    with pytest.raises(BadChunk, match="hash"):
        restorer.apply(1, chunks[1][:-1] + b"\x00")
    with pytest.raises(BadChunk, match="next"):
        restorer.apply(2, chunks[2])
    for index in range(1, len(chunks)):
        restorer.apply(index, chunks[index])
    assert restorer.finish() == source.root_hash()


def test_a_peer_lying_in_manifest_and_chunks_is_caught_by_the_root() -> None:
    source = filled_store(200)
    true_root = source.root_hash()
    source.set(b"k/000001", b"forged balance")
    source.commit()
    forged, chunks = take_snapshot(source)
    lie = Manifest(forged.version - 1, true_root, forged.chunk_hashes)
    restorer = Restorer(lie, true_root, MerkleStore(MemoryDB()))
    for index, chunk in enumerate(chunks):
        restorer.apply(index, chunk)
    with pytest.raises(RestoreFailed):
        restorer.finish()


def test_a_peer_serving_bad_chunks_is_dropped_and_another_asked() -> None:
    source = filled_store(1000)
    manifest, chunks = take_snapshot(source, chunk_bytes=2048)
    asked: list[tuple[str, int]] = []

    def honest(index: int) -> bytes:
        asked.append(("honest", index))
        return chunks[index]

    def liar(index: int) -> bytes:
        asked.append(("liar", index))
        return chunks[index] + b"\x00" if index >= 2 else chunks[index]

    restorer = Restorer(manifest, source.root_hash(), MerkleStore(MemoryDB()))
    dropped = restore_from_peers(restorer, {"liar": liar, "honest": honest})
    assert dropped == ["liar"]
    assert restorer.finish() == source.root_hash()
    assert ("liar", 2) in asked and ("honest", 2) in asked


@pytest.mark.parametrize("backend", ["memory", "leveldb"])
def test_a_view_still_reads_its_version_after_later_commits_and_pruning(backend, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if backend == "leveldb":
        from node.blockstore import open_db

        db = open_db(str(tmp_path / "db"))
    else:
        db = MemoryDB()
    store = MerkleStore(db, keep_versions=2)  # slot values, pruned at every commit
    for v in range(3):
        for i in range(500):
            store.set(b"k/%04d" % i, b"v%d" % v)
        store.commit()
    expected_manifest, expected_chunks = take_snapshot(store, chunk_bytes=2048)
    with store.view() as view:
        for v in range(3, 8):  # overwrite every slot, delete some keys, add others
            for i in range(0, 600, 2):
                store.set(b"k/%04d" % i, b"later %d" % v)
            store.delete(b"k/%04d" % (v * 3))
            store.commit()
        manifest, chunks = take_snapshot(view, chunk_bytes=2048)
    assert (manifest, chunks) == (expected_manifest, expected_chunks)
    assert manifest.version == 2
    restorer = Restorer(manifest, expected_manifest.root, MerkleStore(MemoryDB()))
    for index, chunk in enumerate(chunks):
        restorer.apply(index, chunk)
    assert restorer.finish() == expected_manifest.root
    if backend == "leveldb":
        db.close()
