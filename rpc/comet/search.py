"""``tx_search`` and ``block_search``: CometBFT's query language (:mod:`rpc.comet.query`) over
an index of the chain. Keys are CometBFT's composite keys: ``tx.height``, ``tx.hash``,
``block.height``, and ``<event type>.<attribute>`` for every event a tx or block emitted
(``message.sender``, ``transfer.to``, ``trade.market``, ``liquidation.account`` ...).

The index (:class:`ChainIndex`) is built from the node's own views (block, block results, tx
records) through :class:`rpc.api.NodeAPI`, one height at a time, up to the tip on every search;
it holds each tx's and block's keys in memory with an inverted index of ``key = value`` pairs,
so a search with an equality touches only the heights and txs that carry it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from primitives.hashing import sha256
from rpc.api import NodeAPI
from rpc.comet import shapes
from rpc.comet.query import Condition

@dataclass
class Entry:
    """One indexed tx (height, index, hash) or block (height) and its searchable keys."""

    keys: dict[str, list[str]]
    height: int
    index: int = 0
    hash: bytes = b""


@dataclass(eq=False)
class ChainIndex:
    """The searchable keys of every tx and block from the earliest stored height to the tip."""

    txs: list[Entry] = field(default_factory=list)
    blocks: list[Entry] = field(default_factory=list)
    postings_tx: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    postings_block: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    indexed_height: int = 0
    lock: trio.Lock = field(default_factory=trio.Lock)

    async def catch_up(self, node: NodeAPI) -> None:
        """Index every height the node has committed since the last search."""
        async with self.lock:
            status = await node.status()
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
        block_keys = shapes.event_keys(shapes.finalize_block_events(results))
        block_keys["block.height"] = [str(height)]
        self._add(self.blocks, self.postings_block, Entry(block_keys, height))
        for index, (raw, result) in enumerate(zip(block.txs, results.txs_results)):
            tx_hash = sha256(raw)
            keys = shapes.event_keys(shapes.tx_result(result)["events"])
            keys["tx.height"] = [str(height)]
            keys["tx.hash"] = [tx_hash.hex().upper()]
            self._add(self.txs, self.postings_tx, Entry(keys, height, index, tx_hash))

    @staticmethod
    def _add(entries: list[Entry], postings: dict[tuple[str, str], list[int]], entry: Entry) -> None:
        position = len(entries)
        entries.append(entry)
        for key, values in entry.keys.items():
            for value in set(values):
                postings.setdefault((key, value), []).append(position)

    @staticmethod
    def _search(entries: list[Entry], postings: dict[tuple[str, str], list[int]],
                conditions: Sequence[Condition]) -> list[Entry]:
        candidates: Iterable[int] = range(len(entries))
        equalities = [c for c in conditions if c.op == "="]
        if equalities:
            lists = [postings.get((c.key, str(c.operand)), []) for c in equalities]
            candidates = min(lists, key=len)
        return [entries[i] for i in candidates
                if all(c.holds(entries[i].keys.get(c.key, ())) for c in conditions)]

    def search_txs(self, conditions: Sequence[Condition]) -> list[Entry]:
        return self._search(self.txs, self.postings_tx, conditions)

    def search_blocks(self, conditions: Sequence[Condition]) -> list[Entry]:
        return self._search(self.blocks, self.postings_block, conditions)


_INDEXES: weakref.WeakKeyDictionary[Any, ChainIndex] = weakref.WeakKeyDictionary()


def index_of(node: NodeAPI) -> ChainIndex:
    """The one index of a node (made on its first search, dropped with the node)."""
    found = _INDEXES.get(node)
    if found is None:
        found = _INDEXES[node] = ChainIndex()
    return found
