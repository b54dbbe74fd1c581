"""A dict-backed stand-in for the part of ``plyvel.DB`` the stores use, for pure tests.

Same calls (``get``, ``put``, ``delete``, ``write_batch``, ``iterator`` with ``seek``), same
ordering (bytewise), so the Merkle store and the block store run unchanged on it. Unlike
LevelDB, an iterator sees writes made after it was created (no snapshot); the stores never
write while one of their own iterators is open.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

from sortedcontainers import SortedDict


class MemoryDB:
    def __init__(self) -> None:
        self._data: SortedDict = SortedDict()
        self.closed = False
        self.batches_written = 0

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:
        return self._data.get(key, default)

    def put(self, key: bytes, value: bytes, sync: bool = False) -> None:
        self._data[bytes(key)] = bytes(value)

    def delete(self, key: bytes, sync: bool = False) -> None:
        self._data.pop(key, None)

    def write_batch(self, transaction: bool = False, sync: bool = False) -> MemoryBatch:
        return MemoryBatch(self, transaction)

    def iterator(
        self,
        start: bytes | None = None,
        stop: bytes | None = None,
        include_value: bool = True,
        prefix: bytes | None = None,
    ) -> MemoryIterator:
        if prefix is not None:
            start, stop = prefix, _prefix_end(prefix)
        return MemoryIterator(self._data, start, stop, include_value)

    def snapshot(self) -> MemoryDB:
        """A frozen copy (LevelDB's ``snapshot()``: reads as of now, whatever is written later)."""
        copy = MemoryDB()
        copy._data = self._data.copy()
        return copy

    def close(self) -> None:
        self.closed = True

    def __len__(self) -> int:
        return len(self._data)

    def approximate_bytes(self) -> int:
        return sum(len(k) + len(v) for k, v in self._data.items())


def _prefix_end(prefix: bytes) -> bytes | None:
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes((stripped[-1] + 1,))


class MemoryBatch:
    """Buffers writes; ``write()`` applies them in order, all at once."""

    def __init__(self, db: MemoryDB, transaction: bool) -> None:
        self._db = db
        self._ops: list[tuple[bytes, bytes | None]] = []
        self._transaction = transaction

    def put(self, key: bytes, value: bytes) -> None:
        self._ops.append((bytes(key), bytes(value)))

    def delete(self, key: bytes) -> None:
        self._ops.append((bytes(key), None))

    def clear(self) -> None:
        self._ops.clear()

    def write(self) -> None:
        data = self._db._data
        for key, value in self._ops:
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        self._ops.clear()
        self._db.batches_written += 1

    def __len__(self) -> int:
        return len(self._ops)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and self._transaction:
            return
        self.write()


class MemoryIterator:
    """Forward iterator with ``seek``; each step re-bisects, so it never goes stale."""

    def __init__(
        self, data: SortedDict, start: bytes | None, stop: bytes | None, include_value: bool
    ) -> None:
        self._data = data
        self._start = start
        self._stop = stop
        self._include_value = include_value
        self._index_key: bytes | None = start
        self._inclusive = True

    def seek(self, target: bytes) -> None:
        if self._start is not None and target < self._start:
            target = self._start
        self._index_key = target
        self._inclusive = True

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        keys = self._data.keys()
        if self._index_key is None:
            index = 0
        elif self._inclusive:
            index = self._data.bisect_left(self._index_key)
        else:
            index = self._data.bisect_right(self._index_key)
        if index >= len(keys):
            raise StopIteration
        key = keys[index]
        if self._stop is not None and key >= self._stop:
            raise StopIteration
        self._index_key = key
        self._inclusive = False
        if self._include_value:
            return key, self._data[key]
        return key

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
