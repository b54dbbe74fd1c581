"""The small interface between the clearing application and its authenticated state store.

The application reads and writes byte keys through a :class:`StateStore`; at the end of a block
it calls :meth:`StateStore.commit`, which computes the new root (the app hash) and stages the
store's writes into the caller's write batch, so the node can write block, commit certificate,
results and state changes to LevelDB in ONE synced batch.

:class:`MemoryStore` is the reference implementation used by pure tests; the LevelDB-backed
Merkle store implements the same protocol.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Protocol


class WriteBatch(Protocol):
    """What a store needs of a batch: plyvel's ``WriteBatch`` satisfies it."""

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...


class StateStore(Protocol):
    """A versioned key-value state with a Merkle root.

    Reads see committed state plus the uncommitted writes made since the last commit.
    Versions are block heights: a fresh store has version -1 (nothing committed); the genesis
    state is committed as version 0 and the state after block H as version H. Each
    :meth:`commit` makes ``version + 1``.
    """

    @property
    def version(self) -> int:
        """Latest committed version."""
        ...

    def get(self, key: bytes) -> bytes | None: ...

    def set(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def iterate(self, start: bytes = b"", end: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Key-ordered items with ``start <= key < end`` (``end=None``: to the last key)."""
        ...

    def commit(self, batch: WriteBatch | None = None) -> bytes:
        """Make the pending writes version ``version + 1`` and return its root hash.

        With ``batch`` the store only stages its writes there and the caller writes the batch
        atomically (with the block); without, the store persists them itself.
        """
        ...

    def root_hash(self) -> bytes:
        """Root of the latest committed version."""
        ...


EMPTY_ROOT = hashlib.sha256(b"").digest()


class MemoryStore:
    """An in-memory :class:`StateStore`; the root is a hash over the sorted items.

    O(n) per commit, so only for tests and small simulations; the deterministic root lets
    tests compare app hashes between independent executions.
    """

    def __init__(self) -> None:
        self._committed: dict[bytes, bytes] = {}
        self._pending: dict[bytes, bytes | None] = {}
        self._version = -1
        self._root = EMPTY_ROOT

    @property
    def version(self) -> int:
        return self._version

    def get(self, key: bytes) -> bytes | None:
        if key in self._pending:
            return self._pending[key]
        return self._committed.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self._pending[bytes(key)] = bytes(value)

    def delete(self, key: bytes) -> None:
        self._pending[bytes(key)] = None

    def iterate(self, start: bytes = b"", end: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        merged = dict(self._committed)
        for key, value in self._pending.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        for key in sorted(merged):
            if key >= start and (end is None or key < end):
                yield key, merged[key]

    def commit(self, batch: WriteBatch | None = None) -> bytes:
        for key, value in self._pending.items():
            if value is None:
                self._committed.pop(key, None)
            else:
                self._committed[key] = value
        self._pending.clear()
        self._version += 1
        digest = hashlib.sha256()
        for key in sorted(self._committed):
            value = self._committed[key]
            digest.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value)
        self._root = digest.digest() if self._committed else EMPTY_ROOT
        return self._root

    def root_hash(self) -> bytes:
        return self._root
