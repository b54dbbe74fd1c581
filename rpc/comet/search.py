"""``tx_search`` and ``block_search``: CometBFT's query language (:mod:`rpc.comet.query`) over
an index of the chain. Keys are CometBFT's composite keys: ``tx.height``, ``tx.hash``,
``block.height``, and ``<event type>.<attribute>`` for every event a tx or block emitted
(``message.sender``, ``transfer.to``, ``trade.market``, ``liquidation.account`` ...).

The index (:class:`ChainIndex`) is built from the node's own views (blocks and block results)
through :class:`rpc.api.NodeAPI`, one height at a time, up to the tip on every search (made on
a node's first search). It lives in memory, compactly (:class:`Scope`): ~300 bytes per indexed
trade (``python bench/search_index.py``); CometBFT keeps its index on disk.
"""

from __future__ import annotations

import sys
import weakref
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from primitives.hashing import sha256
from rpc.api import NodeAPI
from rpc.comet import shapes
from rpc.comet.query import Condition

HEIGHT_KEYS = frozenset({"tx.height", "block.height"})
HASH_SIZE = 32


@dataclass(eq=False)
class Scope:
    """The indexed txs (or blocks) in chain order, compactly: a position is an entry's number.

    ``heights`` (and for txs ``indexes`` and ``hashes``, 32 bytes each) are parallel arrays;
    ``values[key][value]`` lists, in order, the positions whose events carry ``key = value``.
    Heights and hashes are not in ``values``: conditions on ``tx.height``/``block.height`` are
    answered from the sorted ``heights``, and ``tx.hash`` by finding the hash.
    """

    heights: array = field(default_factory=lambda: array("Q"))
    indexes: array = field(default_factory=lambda: array("I"))
    hashes: bytearray = field(default_factory=bytearray)
    values: dict[str, dict[str, array]] = field(default_factory=dict)

    def add(self, keys: dict[str, list[str]], height: int, index: int = 0, tx_hash: bytes = b"") -> None:
        position = len(self.heights)
        self.heights.append(height)
        if tx_hash:
            self.indexes.append(index)
            self.hashes += tx_hash
        for key, values in keys.items():
            by_value = self.values.setdefault(sys.intern(key), {})
            for value in sorted(set(values)):
                postings = by_value.get(value)
                if postings is None:
                    postings = by_value[sys.intern(value) if len(value) <= 64 else value] = array("I")
                postings.append(position)

    def matching(self, condition: Condition) -> set[int] | range:
        """The positions for which ``condition`` holds."""
        if condition.key in HEIGHT_KEYS:
            return self._height_range(condition)
        if condition.key == "tx.hash" and self.hashes:
            return self._with_hash(condition)
        found: set[int] = set()
        for value, positions in self.values.get(condition.key, {}).items():
            if condition.holds([value]):
                found.update(positions)
        return found

    def _height_range(self, condition: Condition) -> set[int] | range:
        everything = range(len(self.heights))
        if condition.op == "EXISTS":
            return everything
        if not isinstance(condition.operand, int) or condition.op == "CONTAINS":
            return {i for i in everything if condition.holds([str(self.heights[i])])}
        number, op = condition.operand, condition.op
        low = {"=": bisect_left, ">=": bisect_left, ">": bisect_right}.get(op)
        high = {"=": bisect_right, "<=": bisect_right, "<": bisect_left}.get(op)
        start = low(self.heights, number) if low else 0
        stop = high(self.heights, number) if high else len(self.heights)
        return range(start, max(start, stop))

    def _with_hash(self, condition: Condition) -> set[int]:
        if condition.op == "=" and isinstance(condition.operand, str):
            try:
                wanted = bytes.fromhex(condition.operand)
            except ValueError:
                return set()
            at = self.hashes.find(wanted)
            while at >= 0 and at % HASH_SIZE:
                at = self.hashes.find(wanted, at + 1)
            return {at // HASH_SIZE} if at >= 0 and len(wanted) == HASH_SIZE else set()
        return {i for i in range(len(self.heights))
                if condition.holds([self.hashes[i * HASH_SIZE:(i + 1) * HASH_SIZE].hex().upper()])}

    def search(self, conditions: Sequence[Condition], from_height: int = 0) -> list[int]:
        """Positions, in chain order, for which every condition holds, from ``from_height`` on
        (a pruning node no longer stores what lies below its earliest height)."""
        sets = sorted((self.matching(c) for c in conditions), key=len)
        if not sets:
            return []
        found = set(sets[0])
        for other in sets[1:]:
            found = {p for p in found if p in other}
        first = bisect_left(self.heights, from_height)
        return sorted(p for p in found if p >= first)

    def tx_hash(self, position: int) -> bytes:
        return bytes(self.hashes[position * HASH_SIZE:(position + 1) * HASH_SIZE])


@dataclass(eq=False)
class ChainIndex:
    """The searchable keys of every tx and block from the earliest stored height to the tip."""

    txs: Scope = field(default_factory=Scope)
    blocks: Scope = field(default_factory=Scope)
    indexed_height: int = 0
    earliest_height: int = 0
    """The node's earliest stored height at the last catch-up: searches start there."""
    lock: trio.Lock = field(default_factory=trio.Lock)

    async def catch_up(self, node: NodeAPI) -> None:
        """Index every height the node has committed since the last search."""
        async with self.lock:
            status = await node.status()
            self.earliest_height = status.earliest_block_height
            start = max(self.indexed_height + 1, status.earliest_block_height, 1)
            for height in range(start, status.latest_block_height + 1):
                await self._index_height(node, height)
                self.indexed_height = height
                await trio.sleep(0)  # a long catch-up must not hold the node's event loop

    async def _index_height(self, node: NodeAPI, height: int) -> None:
        block = await node.block(height)
        results = await node.block_results(height)
        if block is None or results is None:
            return
        self.blocks.add(shapes.event_keys(shapes.finalize_block_events(results)), height)
        for index, (raw, result) in enumerate(zip(block.txs, results.txs_results)):
            self.txs.add(shapes.event_keys(shapes.tx_result(result)["events"]), height, index, sha256(raw))


_INDEXES: weakref.WeakKeyDictionary[Any, ChainIndex] = weakref.WeakKeyDictionary()


def index_of(node: NodeAPI) -> ChainIndex:
    """The one index of a node (made on its first search, dropped with the node)."""
    found = _INDEXES.get(node)
    if found is None:
        found = _INDEXES[node] = ChainIndex()
    return found
