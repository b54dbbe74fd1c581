"""State-sync snapshots on a node: taken every N blocks, kept on disk, served over p2p.

Taking (``statesync.snapshot_interval`` > 0): right after block h commits, when h is a multiple
of the interval, :meth:`Snapshots.after_commit` opens a read-only view of the state store at
version h (``MerkleStore.view``: a LevelDB snapshot, taken in microseconds on the trio thread);
a worker thread cuts it into chunks (:func:`state.store.snapshot.iter_chunks`) and writes them
with the manifest to ``data/snapshots/<h>/``, while blocks go on committing. A snapshot still
being written when the next is due makes that one skipped (logged), never a queue. The last
``snapshot_keep_recent`` snapshots are kept.

Serving ``/clearchain/snapshot/1`` (:mod:`node.messages`): the manifests held (at most
``MAX_LISTED``), and one chunk per request, read from disk. A chunk is at most
``statesync.chunk_bytes`` (itself at most half a p2p frame). Requests are answered in order on
the peer's stream, so a peer asking fast waits on its own backpressure.

Asking (a state-syncing node, :mod:`node.statesync`): :meth:`Snapshots.list_snapshots` and
:meth:`Snapshots.fetch_chunk`, each one request with a timeout.

On disk, per snapshot: ``manifest`` (the canonical ``Manifest.to_obj``) and ``chunk-<index>``
files, written under ``<h>.tmp`` and renamed once complete, so a crash leaves no half snapshot
that looks whole (a left-over ``.tmp`` is removed at start).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from node.messages import (
    BadMessage,
    Chunk,
    GetChunk,
    ListSnapshots,
    SnapshotList,
    decode_snapshot,
    encode_snapshot,
)
from node.p2p.network import Network, PeerMisbehaviour, PeerUnavailable
from node.storage_failure import is_disk_full
from primitives import codec
from state.store.merkle import MerkleStore, StoreView
from state.store.snapshot import Manifest, SnapshotError, iter_chunks

log = logging.getLogger("clearchain.snapshots")

SNAPSHOT_PROTOCOL = "/clearchain/snapshot/1"
MAX_LISTED = 10
"""Manifests one answer lists (the newest): a manifest is ~33 bytes per chunk."""
REQUEST_TIMEOUT = 20.0
"""Seconds to wait for a chunk (a 1 MiB chunk from a loaded peer)."""


@dataclass(frozen=True)
class TakenSnapshot:
    manifest: Manifest
    seconds: float
    """Wall time of the worker thread (chunking, hashing, writing)."""
    size: int
    """Bytes of all chunks."""


class SnapshotDir:
    """Snapshots on disk under one directory, ``<height>/manifest`` and ``<height>/chunk-<i>``."""

    def __init__(self, root: Path, keep_recent: int) -> None:
        self.root = Path(root)
        self.keep_recent = keep_recent
        self.root.mkdir(parents=True, exist_ok=True)
        for left in self.root.glob("*.tmp"):
            shutil.rmtree(left, ignore_errors=True)

    def heights(self) -> list[int]:
        return sorted(int(p.name) for p in self.root.iterdir()
                      if p.name.isdigit() and (p / "manifest").exists())

    def manifest(self, height: int) -> Manifest | None:
        try:
            return Manifest.from_obj(codec.decode((self.root / str(height) / "manifest").read_bytes()))
        except (OSError, SnapshotError, codec.CodecError):
            return None

    def chunk(self, height: int, index: int) -> bytes | None:
        try:
            return (self.root / str(height) / f"chunk-{index:06d}").read_bytes()
        except OSError:
            return None

    def write(self, view: StoreView | MerkleStore, chunk_bytes: int) -> TakenSnapshot:
        """Cut ``view`` into chunks on disk (runs in a worker thread); then prune old ones.

        A write that fails (a full disk) removes the part-written ``<height>.tmp`` before the
        OSError goes up: the space goes back to the store and the WAL, which need it more.
        """
        started = time.perf_counter()
        height = view.version
        final = self.root / str(height)
        if final.exists():
            manifest = self.manifest(height)
            if manifest is not None:
                return TakenSnapshot(manifest, 0.0, 0)
        work = self.root / f"{height}.tmp"
        shutil.rmtree(work, ignore_errors=True)
        try:
            work.mkdir()
            hashes = []
            size = 0
            for index, chunk in enumerate(iter_chunks(view, chunk_bytes)):
                (work / f"chunk-{index:06d}").write_bytes(chunk)
                hashes.append(hashlib.sha256(chunk).digest())
                size += len(chunk)
            manifest = Manifest(height, view.root_hash(), tuple(hashes))
            (work / "manifest").write_bytes(codec.encode(manifest.to_obj()))
            work.rename(final)
        except OSError:
            shutil.rmtree(work, ignore_errors=True)
            raise
        self.prune()
        return TakenSnapshot(manifest, time.perf_counter() - started, size)

    def prune(self) -> list[int]:
        heights = self.heights()
        drop = heights[:-self.keep_recent] if self.keep_recent else []
        for height in drop:
            shutil.rmtree(self.root / str(height), ignore_errors=True)
        return drop


@dataclass
class _Pending:
    peer: str
    event: trio.Event
    answer: Any = None


class Snapshots:
    """Takes snapshots after commits, serves them, and asks peers for theirs (module doc)."""

    def __init__(self, directory: SnapshotDir, store: MerkleStore | None, network: Network, *,
                 interval: int, chunk_bytes: int) -> None:
        if chunk_bytes > network.config.max_frame_bytes // 2:
            raise ValueError("statesync.chunk_bytes must be at most half of p2p.max_frame_bytes")
        self.directory = directory
        self.store = store
        """The chain's state store (None until the node has one: a state-syncing node)."""
        self.network = network
        self.interval = interval
        self.chunk_bytes = chunk_bytes
        self.taken: list[TakenSnapshot] = []
        self.skipped = 0
        self._due_send, self._due_receive = trio.open_memory_channel[StoreView](1)
        """One view waits while one is written: snapshots are minutes apart, never a queue."""
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        network.set_handler(SNAPSHOT_PROTOCOL, self.on_message)

    # --- taking -------------------------------------------------------------------------------

    def after_commit(self, height: int) -> None:
        """Called right after block ``height`` committed (before the next can)."""
        if not self.interval or height % self.interval or self.store is None:
            return
        view = self.store.view()
        try:
            self._due_send.send_nowait(view)
        except trio.WouldBlock:
            view.close()
            self.skipped += 1
            log.warning("snapshot of height %d skipped: the previous one is still being written",
                        height)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write due snapshots in a worker thread, one at a time.

        A snapshot that cannot be written (a full disk, any OSError) is logged and skipped,
        and the node goes on: unlike the block store, the WAL and the last-signed state,
        nothing the node commits or signs depends on a snapshot (they only spare a new peer
        the block sync), the part written is removed, and the snapshots already held are
        still whole and served. If the disk is full, the next block's write fails and stops
        the node anyway (``node/storage_failure.py``).
        """
        task_status.started()
        async for view in self._due_receive:
            try:
                taken = await trio.to_thread.run_sync(
                    self.directory.write, view, self.chunk_bytes)
            except OSError as exc:
                reason = "disk full (ENOSPC)" if is_disk_full(exc) else repr(exc)
                log.error("snapshot of height %d skipped, the node goes on: writing %s failed: %s",
                          view.version, self.directory.root, reason)
                continue
            finally:
                view.close()
            self.taken.append(taken)
            del self.taken[:-16]
            log.info("snapshot of height %d: %d chunks, %d bytes in %.2fs, app hash %s",
                     taken.manifest.version, len(taken.manifest.chunk_hashes), taken.size,
                     taken.seconds,
                     taken.manifest.root.hex()[:16])

    # --- serving ------------------------------------------------------------------------------

    async def on_message(self, peer: str, data: bytes) -> None:
        try:
            message = decode_snapshot(data, self.network.config.max_frame_bytes)
        except BadMessage as exc:
            raise PeerMisbehaviour(str(exc)) from exc
        if isinstance(message, ListSnapshots):
            heights = self.directory.heights()[-MAX_LISTED:]
            manifests = [m.to_obj() for h in heights if (m := self.directory.manifest(h))]
            await self._send(peer, SnapshotList(message.request_id, tuple(manifests)))
        elif isinstance(message, GetChunk):
            data = await trio.to_thread.run_sync(self.directory.chunk, message.height, message.index)
            await self._send(peer, Chunk(message.request_id, message.height, message.index, data))
        else:
            pending = self._pending.get(message.request_id)
            if pending is None or pending.peer != peer:
                return  # late answer to a request that timed out
            pending.answer = message
            pending.event.set()

    async def _send(self, peer: str, message: Any) -> None:
        try:
            await self.network.send(peer, SNAPSHOT_PROTOCOL, encode_snapshot(message))
        except PeerUnavailable:
            pass

    # --- asking -------------------------------------------------------------------------------

    async def _request(self, peer: str, message: Any, request_id: int,
                       timeout: float) -> Any:
        pending = _Pending(peer, trio.Event())
        self._pending[request_id] = pending
        try:
            await self.network.send(peer, SNAPSHOT_PROTOCOL, encode_snapshot(message))
            with trio.move_on_after(timeout):
                await pending.event.wait()
        finally:
            del self._pending[request_id]
        return pending.answer

    async def list_snapshots(self, peer: str, timeout: float = REQUEST_TIMEOUT) -> list[Manifest]:
        """The peer's snapshots (malformed manifests left out); [] if it does not answer.

        Raises :class:`PeerUnavailable` if the peer is gone."""
        request_id = next(self._ids)
        answer = await self._request(peer, ListSnapshots(request_id), request_id, timeout)
        if not isinstance(answer, SnapshotList):
            return []
        manifests = []
        for obj in answer.manifests[:MAX_LISTED]:
            try:
                manifests.append(Manifest.from_obj(obj))
            except SnapshotError:
                continue
        return manifests

    async def fetch_chunk(self, peer: str, height: int, index: int,
                          timeout: float = REQUEST_TIMEOUT) -> bytes | None:
        """Chunk ``index`` of the peer's snapshot at ``height``; None if it has none or is slow.

        Raises :class:`PeerUnavailable` if the peer is gone."""
        request_id = next(self._ids)
        answer = await self._request(peer, GetChunk(request_id, height, index), request_id, timeout)
        if not isinstance(answer, Chunk) or (answer.height, answer.index) != (height, index):
            return None
        return answer.data
