"""State-sync snapshots of the authenticated store: chunks, a manifest, and a checked restore.

A snapshot of version V is every (key, value) of the store at V in key order, cut into chunks
of at most ``chunk_bytes`` (canonical ``[[key, value], ...]``). Its :class:`Manifest` names
the version, the root (the app hash after block V) and the SHA-256 of every chunk.

A restoring node (:class:`Restorer`):

1. takes a manifest only if its root is the app hash it verified with the light client (the
   app hash after V is in header V + 1): :class:`SnapshotRejected` otherwise;
2. takes each chunk only if its hash is the manifest's for that index, its keys ascend and
   follow the previous chunk's: :class:`BadChunk` otherwise (drop the peer that sent it, ask
   another: the index stays wanted);
3. after the last chunk, commits the store at version V (``MerkleStore.commit(at_version=V)``)
   and compares the root with the verified app hash: :class:`RestoreFailed` otherwise.

Step 3 is the proof: the chunk hashes come from the peer that offered the manifest, so a peer
that lies in both manifest and chunks is only caught there (CometBFT's apps check the restored
app hash the same way). The root check of step 1 refuses a snapshot of another state at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from primitives import codec
from state.store.merkle import MerkleStore, StoreView

FORMAT = 1
DEFAULT_CHUNK_BYTES = 1 << 20
"""1 MiB: a chunk is one p2p message, well under the 16 MiB message cap, and a bad one costs
little to fetch again."""
MAX_CHUNK_BYTES = 8 << 20


class SnapshotError(ValueError):
    """A snapshot, manifest or chunk that cannot be used."""


class SnapshotRejected(SnapshotError):
    """The manifest does not describe the verified state (other root, format, shape)."""


class BadChunk(SnapshotError):
    """A chunk whose hash or contents are not what the manifest promises: drop its sender."""


class RestoreFailed(SnapshotError):
    """Every chunk applied, but the restored root is not the verified app hash."""


@dataclass(frozen=True)
class Manifest:
    version: int
    root: bytes
    chunk_hashes: tuple[bytes, ...]
    format: int = FORMAT

    def to_obj(self) -> dict[str, Any]:
        return {"version": self.version, "root": self.root, "chunks": list(self.chunk_hashes),
                "format": self.format}

    @classmethod
    def from_obj(cls, obj: Any) -> Manifest:
        try:
            version, root, chunks, fmt = obj["version"], obj["root"], obj["chunks"], obj["format"]
        except (KeyError, TypeError) as exc:
            raise SnapshotRejected(f"malformed manifest: {exc!r}") from exc
        if type(version) is not int or version < 0 or type(root) is not bytes or len(root) != 32:
            raise SnapshotRejected("manifest version or root is malformed")
        if not isinstance(chunks, list) or not chunks or not all(
                type(h) is bytes and len(h) == 32 for h in chunks):
            raise SnapshotRejected("manifest chunk hashes are malformed")
        return cls(version, root, tuple(chunks), fmt)

    def hash(self) -> bytes:
        return hashlib.sha256(codec.encode(self.to_obj())).digest()


def iter_chunks(store: MerkleStore | StoreView,
                chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[bytes]:
    """The store's committed state (no pending writes) as encoded chunks, in key order; a
    :class:`StoreView` (``store.view()``) may be chunked in a thread while blocks commit."""
    pairs: list[list[bytes]] = []
    size = 0
    for key, value in store.iterate():
        pairs.append([key, value])
        size += len(key) + len(value) + 8
        if size >= chunk_bytes:
            yield codec.encode(pairs)
            pairs, size = [], 0
    if pairs or size == 0:
        yield codec.encode(pairs)


def take_snapshot(store: MerkleStore | StoreView,
                  chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> tuple[Manifest, list[bytes]]:
    """Manifest and chunks of the store's latest committed version."""
    chunks = list(iter_chunks(store, chunk_bytes))
    manifest = Manifest(store.version, store.root_hash(),
                        tuple(hashlib.sha256(c).digest() for c in chunks))
    return manifest, chunks


class Restorer:
    """Applies a snapshot's chunks, in order, to an empty store (see the module doc)."""

    def __init__(self, manifest: Manifest, trusted_app_hash: bytes, store: MerkleStore) -> None:
        if manifest.format != FORMAT:
            raise SnapshotRejected(f"snapshot format {manifest.format}, this node reads {FORMAT}")
        if manifest.root != trusted_app_hash:
            raise SnapshotRejected(
                f"snapshot root {manifest.root.hex().upper()} is not the verified app hash "
                f"{trusted_app_hash.hex().upper()} of height {manifest.version}")
        if store.version != -1:
            raise SnapshotRejected("a snapshot restores into an empty store only")
        self.manifest = manifest
        self.trusted_app_hash = trusted_app_hash
        self.store = store
        self.next_index = 0
        self._last_key: bytes | None = None
        self.keys = 0

    @property
    def done(self) -> bool:
        return self.next_index == len(self.manifest.chunk_hashes)

    def apply(self, index: int, chunk: bytes) -> None:
        """Apply chunk ``index`` (the next one); :class:`BadChunk` leaves the state as it was."""
        if index != self.next_index:
            raise BadChunk(f"chunk {index} arrived, {self.next_index} is next")
        if len(chunk) > MAX_CHUNK_BYTES:
            raise BadChunk(f"chunk {index} is {len(chunk)} bytes, over {MAX_CHUNK_BYTES}")
        if hashlib.sha256(chunk).digest() != self.manifest.chunk_hashes[index]:
            raise BadChunk(f"chunk {index} does not have the manifest's hash")
        try:
            pairs = codec.decode(chunk, max_bytes=MAX_CHUNK_BYTES)
        except codec.CodecError as exc:
            raise BadChunk(f"chunk {index} is not canonical: {exc}") from exc
        last = self._last_key
        checked: list[tuple[bytes, bytes]] = []
        for pair in pairs if isinstance(pairs, list) else [None]:
            if (not isinstance(pair, list) or len(pair) != 2 or type(pair[0]) is not bytes
                    or type(pair[1]) is not bytes):
                raise BadChunk(f"chunk {index} holds something other than [key, value] pairs")
            if last is not None and pair[0] <= last:
                raise BadChunk(f"chunk {index}: keys out of order")
            last = pair[0]
            checked.append((pair[0], pair[1]))
        for key, value in checked:
            self.store.set(key, value)
        self._last_key = last
        self.keys += len(checked)
        self.next_index += 1

    def finish(self, batch: Any = None) -> bytes:
        """Commit at the snapshot's version; the root must be the verified app hash."""
        if not self.done:
            raise SnapshotError(f"{self.next_index} of {len(self.manifest.chunk_hashes)} "
                                "chunks applied")
        root = self.store.commit(batch, at_version=self.manifest.version)
        if root != self.trusted_app_hash:
            raise RestoreFailed(
                f"restored root {root.hex().upper()} is not the verified app hash "
                f"{self.trusted_app_hash.hex().upper()}")
        return root


def restore_from_peers(restorer: Restorer, peers: dict[str, Any]) -> list[str]:
    """Fetch every chunk from ``peers`` (name -> ``fetch(index) -> bytes``), round robin; a
    peer whose chunk is bad, or whose fetch fails, is dropped and the next one asked for the
    same index. Returns the dropped peers' names; :class:`SnapshotError` when none is left."""
    alive = list(peers)
    dropped: list[str] = []
    turn = 0
    while not restorer.done:
        if not alive:
            raise SnapshotError(f"no peer left to serve chunk {restorer.next_index}; "
                                f"dropped {dropped}")
        name = alive[turn % len(alive)]
        try:
            restorer.apply(restorer.next_index, peers[name](restorer.next_index))
        except (BadChunk, OSError, KeyError):
            del alive[turn % len(alive)]
            dropped.append(name)
            continue
        turn += 1
    return dropped
