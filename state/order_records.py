"""Orders' fill records: held in memory, stored as one journal entry per block.

A signed order may fill until its expiry height, in parts, and never beyond its size; a cancel
ends it early. So every live order has a record ``(order hash, filled, cancelled, expiry)``
that each fill reads and writes. Stored as one Merkle leaf per order, the two records of a fill
were most of a block's state writes and about 40 us of a validator's CPU per trade (each a
new key: its leaf, value and key-index entries, then its deletion at expiry).

The state holds instead, per block, one journal entry (``f/<height>``): the records that
block wrote, sorted by order. A record is *current* until a later block writes its order again
or its expiry passes; a journal entry is deleted, in the block that makes it so, once none of
its records is current. Everything here follows from the journal entries in the state and the
heights, so a node that reopens its store rebuilds exactly the records and counts a node that
never stopped holds (``OrderRecords.rebuild``; ``invariants()`` compares the two). What it
costs: one order's record has no Merkle proof of its own (its journal entry has one, but not
the absence of later writes), and records live in memory until they expire.
"""

from __future__ import annotations

from typing import Any

from state.model import order_key

Record = tuple[bytes, int, int, int]  # (order hash, filled, cancelled 0/1, expiry height)


def journal_key(height: int) -> bytes:
    return b"f/" + height.to_bytes(8, "big")


JOURNAL_PREFIX = b"f/"


class OrderRecords:
    def __init__(self) -> None:
        self._current: dict[bytes, tuple[Record, int]] = {}  # order key -> (record, journal height)
        self._live: dict[int, int] = {}  # journal height -> its records still current
        self._by_expiry: dict[int, set[bytes]] = {}  # expiry -> order keys to look at then
        self._block: dict[bytes, tuple[bytes, int, Record]] = {}  # written by the open block
        self._expired: set[bytes] = set()  # records the open block's end retires
        self._due: list[int] = []  # the expiries the open block's end went through
        self._dead: list[int] = []  # journal heights left with no current record

    # --- reads ---------------------------------------------------------------------------------

    def get(self, key: bytes) -> Record | None:
        """The record of the order with this ``order_key`` (this block's writes included)."""
        written = self._block.get(key)
        if written is not None:
            return written[2]
        if key in self._expired:
            return None
        current = self._current.get(key)
        return None if current is None else current[0]

    def __len__(self) -> int:
        return len(self._current)

    def current(self) -> dict[bytes, tuple[Record, int]]:
        """Committed records with the height of the journal entry holding each (audits, tests)."""
        return dict(self._current)

    def live_counts(self) -> dict[int, int]:
        return dict(self._live)

    # --- the block's writes --------------------------------------------------------------------

    def put(self, address: bytes, order_id: int, record: Record) -> None:
        key = order_key(address, order_id)
        self._block[key] = (address, order_id, record)
        self._by_expiry.setdefault(record[3], set()).add(key)

    def expire(self, height: int) -> None:
        """End of block ``height``: records whose expiry is at or below it stop being current
        (a record filed under an earlier expiry and extended since by a cancel stays). Takes
        effect at :meth:`commit`, like every write of the block."""
        self._due = [expiry for expiry in self._by_expiry if expiry <= height]
        keys: set[bytes] = set()
        for expiry in self._due:
            keys |= self._by_expiry[expiry]
        for key in keys:
            record = self.get(key)
            if record is not None and record[3] <= height:
                self._block.pop(key, None)
                self._expired.add(key)

    def commit(self, height: int) -> tuple[list[list[Any]], list[int]]:
        """Close block ``height``: its journal entry (records sorted by order; empty if it
        wrote none that is still current) and the journal heights to delete, sorted."""
        for expiry in self._due:
            del self._by_expiry[expiry]
        for key in sorted(self._expired):
            self._retire(key)
        entry = []
        for key in sorted(self._block):
            address, order_id, record = self._block[key]
            self._retire(key)
            self._current[key] = (record, height)
            entry.append([address, order_id, *record])
        if entry:
            self._live[height] = len(entry)
        self._block, self._expired, self._due = {}, set(), []
        dead, self._dead = sorted(self._dead), []
        return entry, dead

    def _retire(self, key: bytes) -> None:
        """The committed record of ``key``, if any, stops being current."""
        current = self._current.pop(key, None)
        if current is None:
            return
        height = current[1]
        left = self._live[height] - 1
        if left:
            self._live[height] = left
        else:
            del self._live[height]
            self._dead.append(height)

    # --- reopening -----------------------------------------------------------------------------

    @classmethod
    def rebuild(cls, journal: list[tuple[int, list[list[Any]]]], last_height: int) -> OrderRecords:
        """The records as of ``last_height`` from its stored journal entries, by height."""
        records = cls()
        for height, entry in journal:
            for address, order_id, order_hash, filled, cancelled, expiry in entry:
                if expiry <= last_height:
                    continue  # expired at the end of block ``expiry``
                key = order_key(address, order_id)
                records._retire(key)
                records._current[key] = ((order_hash, filled, cancelled, expiry), height)
                records._live[height] = records._live.get(height, 0) + 1
                records._by_expiry.setdefault(expiry, set()).add(key)
        records._dead = []  # a journal entry left with no current record was deleted when it was
        return records
