"""node/snapshots.py: snapshots every N blocks on disk, served over /clearchain/snapshot/1."""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
from pathlib import Path

import pytest
import trio

from node.config import P2PSection
from node.node import PROTOCOLS
from node.p2p.network import Network
from node.snapshots import SNAPSHOT_PROTOCOL, SnapshotDir, Snapshots
from primitives.crypto import PrivateKey
from state.store import MemoryDB, MerkleStore
from state.store.snapshot import Restorer
from tests.node.test_node_inprocess import make_node, wait_for


def filled(versions: int) -> MerkleStore:
    store = MerkleStore(MemoryDB())
    for v in range(versions):
        for i in range(300):
            store.set(b"k/%04d" % i, b"value %d" % (v * i))
        store.commit()
    return store


def test_snapshots_on_disk_restore_their_version_and_only_the_newest_are_kept(
        tmp_path: Path) -> None:
    store = filled(1)
    directory = SnapshotDir(tmp_path / "snapshots", keep_recent=2)
    roots = {}
    for _ in range(4):
        with store.view() as view:
            taken = directory.write(view, chunk_bytes=1024)
        roots[store.version] = store.root_hash()
        assert taken.manifest.version == store.version and taken.manifest.root == store.root_hash()
        assert len(taken.manifest.chunk_hashes) > 3 and taken.size > 0
        for i in range(0, 300, 7):
            store.set(b"k/%04d" % i, b"next %d" % store.version)
        store.commit()
    assert directory.heights() == [2, 3]
    (tmp_path / "snapshots" / "9.tmp").mkdir()  # a snapshot a crash interrupted
    directory = SnapshotDir(tmp_path / "snapshots", keep_recent=2)
    assert not (tmp_path / "snapshots" / "9.tmp").exists() and directory.heights() == [2, 3]
    manifest = directory.manifest(2)
    assert manifest is not None
    restorer = Restorer(manifest, roots[2], MerkleStore(MemoryDB()))
    for index in range(len(manifest.chunk_hashes)):
        chunk = directory.chunk(2, index)
        assert chunk is not None
        restorer.apply(index, chunk)
    assert restorer.finish() == roots[2]
    assert directory.chunk(2, len(manifest.chunk_hashes)) is None and directory.chunk(7, 0) is None


async def test_a_snapshot_the_disk_has_no_room_for_is_skipped_whole_and_the_node_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    store = filled(1)
    directory = SnapshotDir(tmp_path / "snapshots", keep_recent=2)
    with store.view() as view:
        directory.write(view, chunk_bytes=1024)  # an older snapshot, held and served
    store.set(b"k/0000", b"next")
    store.commit()
    write_bytes = Path.write_bytes

    def full_at_the_third_chunk(path: Path, data: bytes) -> int:
        if path.name == "chunk-000002":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", full_at_the_third_chunk)
    network = Network(PrivateKey.generate(), dataclasses.replace(
        P2PSection(), listen_address="/ip4/127.0.0.1/tcp/0"), protocols=PROTOCOLS)
    snapshots = Snapshots(directory, store, network, interval=1, chunk_bytes=1024)

    with caplog.at_level(logging.ERROR, logger="clearchain.snapshots"):
        async with trio.open_nursery() as nursery:
            await nursery.start(snapshots.run)
            snapshots.after_commit(store.version)
            await wait_for(lambda: bool(caplog.records))  # the worker thread failed
            assert directory.heights() == [0] and snapshots.taken == []
            assert sorted(p.name for p in directory.root.iterdir()) == ["0"]  # no 1.tmp left
            monkeypatch.undo()  # room again: the next snapshot is taken
            store.set(b"k/0001", b"next")
            store.commit()
            snapshots.after_commit(store.version)
            await wait_for(lambda: len(snapshots.taken) == 1)
            nursery.cancel_scope.cancel()
    assert directory.heights() == [0, 2]
    (record,) = caplog.records
    assert "snapshot of height 1 skipped, the node goes on" in record.getMessage()
    assert "disk full (ENOSPC)" in record.getMessage()


def client(address: str, tmp_path: Path) -> tuple[Network, Snapshots]:
    config = dataclasses.replace(P2PSection(), listen_address="/ip4/127.0.0.1/tcp/0",
                                 persistent_peers=(address,), dial_backoff_min_ms=50,
                                 dial_backoff_max_ms=100)
    network = Network(PrivateKey.generate(), config, protocols=PROTOCOLS)
    snapshots = Snapshots(SnapshotDir(tmp_path / "client", 2), MerkleStore(MemoryDB()), network,
                          interval=0, chunk_bytes=1 << 20)
    return network, snapshots


async def test_a_node_snapshots_every_interval_and_serves_them_to_a_peer(tmp_path: Path) -> None:
    node = make_node(tmp_path, statesync={"snapshot_interval": 3, "snapshot_keep_recent": 2,
                                          "chunk_bytes": 1024})
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: len(node.snapshots.taken) >= 3, timeout=60)
        heights = node.snapshots.directory.heights()
        assert len(heights) == 2 and all(h % 3 == 0 for h in heights)
        network, snapshots = client(node.network.listen_addrs()[0], tmp_path)
        await nursery.start(network.run)
        await wait_for(lambda: node.network.peer_id in network.peers(), timeout=30)
        with trio.fail_after(60):
            manifests = await snapshots.list_snapshots(node.network.peer_id)
        assert [m.version for m in manifests] == node.snapshots.directory.heights()[-2:]
        manifest = manifests[-1]
        assert manifest.root == node.chain.store.root_at(manifest.version)
        assert len(manifest.chunk_hashes) > 1  # the genesis state is over 1 KiB
        restorer = Restorer(manifest, manifest.root, MerkleStore(MemoryDB()))
        with trio.fail_after(60):
            for index in range(len(manifest.chunk_hashes)):
                chunk = await snapshots.fetch_chunk(node.network.peer_id, manifest.version, index)
                assert chunk is not None
                restorer.apply(index, chunk)
            assert await snapshots.fetch_chunk(node.network.peer_id, 10**9, 0) is None
        assert restorer.finish() == manifest.root
        # garbage on the protocol: the peer is dropped
        await network.send(node.network.peer_id, SNAPSHOT_PROTOCOL, b"\xc1not msgpack")
        await wait_for(lambda: node.network.peer_id not in network.peers(), timeout=30)
        nursery.cancel_scope.cancel()
