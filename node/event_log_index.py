"""A node-local index of the waterfall event log, so the ``liquidations`` RPC costs its page.

The application logs each waterfall event (liquidation, fills, insurance, deleveraging) in
state under ``e/<height><index>``, indices 0.. within a block. Paging that log by counting
from the range's first key costs the whole range before the page: a client asking for a deep
page of a long range made the node walk millions of keys. This index numbers the events
across blocks, written in each block's own write batch (it is never out of step with the
state), and answers a page with two seeks and the page's own keys::

    n/lh height(8)         -> first(8)               events logged before this block
    n/le end(8)            -> height(8) count(4)     end = first + count (exclusive)
    n/lt                   -> total(8)               events logged through the latest block

Only blocks that logged events have entries. All lookups seek forward (LevelDB and the
in-memory test database alike): the events before height ``h`` are the ``first`` of the next
block with events after ``h`` (or the total), and event number ``k`` lies in the first block
whose ``end`` exceeds ``k``. A home whose store predates the index is indexed once at open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from state.model import event_key, prefix_end
from state.queries import logged_event

_BY_HEIGHT = b"n/lh"
_BY_END = b"n/le"
_TOTAL = b"n/lt"
_EVENTS = b"e/"

EventSource = Callable[[bytes, bytes], Iterator[tuple[bytes, bytes]]]
"""``(start, end) -> (key, value)`` over the state's committed keys (``MerkleStore.iterate``)."""


def _u(value: int, size: int = 8) -> bytes:
    return value.to_bytes(size, "big")


class EventLogIndex:
    def __init__(self, db: Any, events: EventSource) -> None:
        self.db = db
        self.events = events

    # --- writing (in the block's batch) -------------------------------------------------------

    def total(self) -> int:
        data = self.db.get(_TOTAL)
        return 0 if data is None else int.from_bytes(data, "big")

    def stage(self, batch: Any, height: int, count: int) -> None:
        """Stage block ``height``'s ``count`` logged events into its write batch."""
        if count <= 0:
            return
        first = self.total()
        batch.put(_BY_HEIGHT + _u(height), _u(first))
        batch.put(_BY_END + _u(first + count), _u(height) + _u(count, 4))
        batch.put(_TOTAL, _u(first + count))

    def build_if_missing(self) -> int:
        """Index a store written before the index existed (once); returns the events found."""
        if self.db.get(_TOTAL) is not None:
            return 0
        counts: dict[int, int] = {}
        for key, _ in self.events(_EVENTS, prefix_end(_EVENTS)):
            height = int.from_bytes(key[2:10], "big")
            counts[height] = counts.get(height, 0) + 1
        batch = self.db.write_batch(sync=True)
        first = 0
        for height in sorted(counts):
            batch.put(_BY_HEIGHT + _u(height), _u(first))
            batch.put(_BY_END + _u(first + counts[height]), _u(height) + _u(counts[height], 4))
            first += counts[height]
        batch.put(_TOTAL, _u(first))
        batch.write()
        return first

    # --- reading ------------------------------------------------------------------------------

    def _first_at_or_after(self, prefix: bytes, key: bytes) -> tuple[bytes, bytes] | None:
        with self.db.iterator(start=prefix + key, stop=prefix_end(prefix)) as it:
            return next(iter(it), None)

    def before(self, height: int) -> int:
        """Events logged in blocks below ``height``."""
        found = self._first_at_or_after(_BY_HEIGHT, _u(max(0, height)))
        return self.total() if found is None else int.from_bytes(found[1], "big")

    def locate(self, number: int) -> tuple[int, int] | None:
        """(height, index within its block) of event ``number`` (0-based), None past the end."""
        found = self._first_at_or_after(_BY_END, _u(number + 1))
        if found is None:
            return None
        end = int.from_bytes(found[0][len(_BY_END):], "big")
        height, count = int.from_bytes(found[1][:8], "big"), int.from_bytes(found[1][8:], "big")
        return height, number - (end - count)

    def page(self, min_height: int, max_height: int, offset: int,
             limit: int) -> tuple[list[dict[str, Any]], int]:
        """Events of blocks ``min_height..max_height``, oldest first, from ``offset``, at most
        ``limit``; and how many the range holds (exact)."""
        low = self.before(min_height)
        total = self.before(max_height + 1) - low
        want = min(limit, total - offset)
        if want <= 0:
            return [], max(total, 0)
        start = self.locate(low + offset)
        assert start is not None, "the index counts an event past the log"
        items = []
        for key, value in self.events(event_key(*start), event_key(max_height + 1, 0)):
            items.append(logged_event(key, value))
            if len(items) == want:
                break
        return items, total
