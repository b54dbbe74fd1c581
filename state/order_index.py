"""Which order records exist, and from which height each may be pruned: the ``r/`` keys in memory.

Every fill reads the records of its two orders, and most orders are new. Asking the store for an
absent key costs a LevelDB seek (iterators do not use LevelDB's bloom filters), so a fill paid
two seeks for nothing. The index answers "no record" from memory; the store is read only for
orders that already have one.

It mirrors the block view of the store: a key is added when its record is first written and
dropped when ``end_block`` deletes the record, and ``ClearingApp`` rebuilds it from the store
on open. ``tests/state/test_order_index.py`` checks it against the store's ``r/`` keys.
"""

from __future__ import annotations


class OrderIndex:
    def __init__(self) -> None:
        self._keys: set[bytes] = set()
        self._by_expiry: dict[int, set[bytes]] = {}

    def __contains__(self, key: bytes) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def keys(self) -> frozenset[bytes]:
        return frozenset(self._keys)

    def files(self, key: bytes, expiry: int) -> bool:
        """Whether ``key`` is scheduled for the check at ``expiry`` (audits only)."""
        return key in self._by_expiry.get(expiry, ())

    def add(self, key: bytes, expiry: int) -> None:
        """``key`` has a record that may be pruned after ``expiry`` (a key can be filed under
        several expiries: a cancel may extend a record's life; the record says which holds)."""
        self._keys.add(key)
        self._by_expiry.setdefault(expiry, set()).add(key)

    def due(self, height: int) -> list[bytes]:
        """Keys filed under an expiry at or below ``height``, sorted, removed from the schedule
        (not from the index: the caller decides, from the record, whether it is deleted)."""
        due = [expiry for expiry in self._by_expiry if expiry <= height]
        keys: set[bytes] = set()
        for expiry in due:
            keys |= self._by_expiry.pop(expiry)
        return sorted(keys)

    def discard(self, key: bytes) -> None:
        """The record of ``key`` was deleted."""
        self._keys.discard(key)
