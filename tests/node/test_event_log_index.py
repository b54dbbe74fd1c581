"""The event-log index: pages of the waterfall log equal a plain slice of it, with an exact
total, and a page reads only its own events however deep it starts."""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from node.event_log_index import EventLogIndex
from primitives.codec import encode
from state.model import event_key
from state.store import MemoryDB


class Log:
    """Logged events ``e/<height><index>`` in a sorted dict, counting the keys a reader takes."""

    def __init__(self) -> None:
        self.entries: dict[bytes, bytes] = {}
        self.read = 0

    def add_block(self, height: int, count: int) -> None:
        for index in range(count):
            self.entries[event_key(height, index)] = encode({"type": "liquidation", "n": index})

    def iterate(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(k for k in self.entries if start <= k < end):
            self.read += 1
            yield key, self.entries[key]

    def expected(self, low: int, high: int) -> list[tuple[int, int]]:
        """(height, index) of every event of blocks low..high, oldest first: the spec."""
        keys = sorted(self.entries)
        found = [(int.from_bytes(k[2:10], "big"), int.from_bytes(k[10:14], "big")) for k in keys]
        return [(h, i) for h, i in found if low <= h <= high]


def indexed(counts: list[int]) -> tuple[EventLogIndex, Log]:
    """Blocks 1..len(counts) logging those many events, indexed block by block as a chain does."""
    log, db = Log(), MemoryDB()
    index = EventLogIndex(db, log.iterate)
    for height, count in enumerate(counts, start=1):
        log.add_block(height, count)
        batch = db.write_batch()
        index.stage(batch, height, count)
        batch.write()
    return index, log


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(0, 4), max_size=25), low=st.integers(0, 30),
       span=st.integers(0, 30), offset=st.integers(0, 40), limit=st.integers(1, 12))
def test_a_page_is_the_slice_of_the_range_and_the_total_is_exact(
        counts: list[int], low: int, span: int, offset: int, limit: int) -> None:
    index, log = indexed(counts)
    high = low + span
    items, total = index.page(low, high, offset, limit)
    want = log.expected(low, high)
    assert total == len(want)
    assert [(item["height"], item["n"]) for item in items] == want[offset:offset + limit]


def test_a_deep_page_of_a_long_range_reads_only_its_own_events() -> None:
    index, log = indexed([10] * 1_000)  # 10,000 events
    log.read = 0
    items, total = index.page(1, 1_000, 9_000, 10)
    assert total == 10_000
    assert [(i["height"], i["n"]) for i in items] == [(901, n) for n in range(10)]
    assert log.read == 10  # the scan this replaced read 9,010 keys for this page
    log.read = 0
    assert index.page(500, 499, 0, 10) == ([], 0)  # an empty range reads nothing
    assert index.page(1, 1_000, 10_000, 10) == ([], 10_000)  # past the end: nothing
    assert log.read == 0


def test_a_store_from_before_the_index_is_indexed_once_at_open() -> None:
    staged, log = indexed([0, 3, 0, 2, 5])
    rebuilt = EventLogIndex(MemoryDB(), log.iterate)
    assert rebuilt.build_if_missing() == 10
    assert rebuilt.build_if_missing() == 0  # once
    for low, high, offset, limit in [(1, 5, 0, 100), (2, 4, 1, 3), (4, 9, 2, 2)]:
        assert rebuilt.page(low, high, offset, limit) == staged.page(low, high, offset, limit)


def test_a_block_reports_exactly_the_events_it_logged() -> None:
    """What the chain stages per block (``EndBlockResult.logged``) is the number of its
    ``e/<height>`` keys, on a block that liquidates (the waterfall's cross-market default)."""
    from tests.state.test_waterfall import _cross_market_default

    chain = _cross_market_default(fund_seed=10**12)
    chain.block()
    height = chain.height
    keys = [k for k, _ in chain.app.store.iterate(event_key(height, 0), event_key(height + 1, 0))]
    assert chain.last_end.logged == len(keys) > 0
