"""``tx_search`` and ``block_search``: CometBFT's query language over an index of the chain.

A query is conditions joined by ``AND``; a condition is ``key op operand`` with ``op`` one of
``=``, ``<``, ``<=``, ``>``, ``>=``, ``CONTAINS`` or ``EXISTS`` (no operand), the operand a
'quoted string' or a number. Keys are CometBFT's composite keys: ``tx.height``, ``tx.hash``,
``block.height``, and ``<event type>.<attribute>`` for every event a tx or block emitted
(``message.sender``, ``transfer.to``, ``trade.market``, ``liquidation.account`` ...).

The index (:class:`ChainIndex`) is built from the node's own views (block, block results, tx
records) through :class:`rpc.api.NodeAPI`, one height at a time, up to the tip on every search;
it holds each tx's and block's keys in memory with an inverted index of ``key = value`` pairs,
so a search with an equality touches only the heights and txs that carry it.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from primitives.hashing import sha256
from rpc.api import NodeAPI
from rpc.comet import shapes
from rpc.views import TxRecord

MAX_QUERY_LENGTH = 512
MAX_CONDITIONS = 8
OPERATORS = ("<=", ">=", "=", "<", ">", "CONTAINS", "EXISTS")

_CONDITION = re.compile(
    r"\s*(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)\s*"
    r"(?:(?P<exists>EXISTS)|(?P<op><=|>=|=|<|>|CONTAINS)\s*(?:'(?P<text>[^']*)'|(?P<number>-?[0-9]+(?:\.[0-9]+)?)))"
    r"\s*\Z",
    re.IGNORECASE,
)


class SearchQueryError(ValueError):
    """A query that does not parse; the message says which condition and why."""


@dataclass(frozen=True)
class Condition:
    key: str
    op: str
    operand: str | int | None = None

    def holds(self, values: Sequence[str]) -> bool:
        if self.op == "EXISTS":
            return bool(values)
        return any(self._holds(value) for value in values)

    def _holds(self, value: str) -> bool:
        if self.op == "CONTAINS":
            return str(self.operand) in value
        if isinstance(self.operand, int):
            try:
                number = int(value)
            except ValueError:
                return False
            return _compare(number, self.op, self.operand)
        return _compare(value, self.op, str(self.operand))


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "=":
        return left == right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right


def parse_search_query(text: Any) -> tuple[Condition, ...]:
    if not isinstance(text, str) or not text.strip():
        raise SearchQueryError("query must be a non-empty string such as tx.height=5")
    if len(text) > MAX_QUERY_LENGTH:
        raise SearchQueryError(f"query longer than {MAX_QUERY_LENGTH} characters")
    parts = re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE)
    if len(parts) > MAX_CONDITIONS:
        raise SearchQueryError(f"more than {MAX_CONDITIONS} conditions")
    conditions = []
    for part in parts:
        match = _CONDITION.match(part)
        if match is None:
            raise SearchQueryError(f"cannot parse condition {part.strip()!r}: expected key op 'value' "
                                   "(op: =, <, <=, >, >=, CONTAINS) or key EXISTS")
        if match["exists"]:
            conditions.append(Condition(match["key"], "EXISTS"))
            continue
        op = match["op"].upper()
        if match["number"] is not None:
            number = match["number"]
            if "." in number:
                raise SearchQueryError(f"{part.strip()!r}: only whole numbers are indexed")
            operand: str | int = int(number)
        else:
            operand = match["text"]
        if op == "CONTAINS" and not isinstance(operand, str):
            raise SearchQueryError(f"{part.strip()!r}: CONTAINS takes a quoted string")
        if match["key"].lower() == "tx.hash" and isinstance(operand, str):
            operand = operand.upper()
        conditions.append(Condition(match["key"], op, operand))
    return tuple(conditions)


@dataclass
class _Entry:
    keys: dict[str, list[str]]
    height: int
    index: int = 0
    hash: bytes = b""


@dataclass(eq=False)
class ChainIndex:
    """The searchable keys of every tx and block from the earliest stored height to the tip."""

    txs: list[_Entry] = field(default_factory=list)
    blocks: list[_Entry] = field(default_factory=list)
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

    async def _index_height(self, node: NodeAPI, height: int) -> None:
        block = await node.block(height)
        results = await node.block_results(height)
        if block is None or results is None:
            return
        block_keys = shapes.event_keys(shapes.finalize_block_events(results))
        block_keys["block.height"] = [str(height)]
        self._add(self.blocks, self.postings_block, _Entry(block_keys, height))
        for index, (raw, result) in enumerate(zip(block.txs, results.txs_results)):
            tx_hash = sha256(raw)
            record = await node.tx(tx_hash) or TxRecord(tx_hash, height, index, raw, result)
            keys = shapes.event_keys(shapes.tx_result(result, shapes.record_events(record))["events"])
            keys["tx.height"] = [str(height)]
            keys["tx.hash"] = [tx_hash.hex().upper()]
            self._add(self.txs, self.postings_tx, _Entry(keys, height, index, tx_hash))

    @staticmethod
    def _add(entries: list[_Entry], postings: dict[tuple[str, str], list[int]], entry: _Entry) -> None:
        position = len(entries)
        entries.append(entry)
        for key, values in entry.keys.items():
            for value in set(values):
                postings.setdefault((key, value), []).append(position)

    @staticmethod
    def _search(entries: list[_Entry], postings: dict[tuple[str, str], list[int]],
                conditions: Sequence[Condition]) -> list[_Entry]:
        candidates: Iterable[int] = range(len(entries))
        equalities = [c for c in conditions if c.op == "="]
        if equalities:
            lists = [postings.get((c.key, str(c.operand)), []) for c in equalities]
            candidates = min(lists, key=len)
        return [entries[i] for i in candidates
                if all(c.holds(entries[i].keys.get(c.key, ())) for c in conditions)]

    def search_txs(self, conditions: Sequence[Condition]) -> list[_Entry]:
        return self._search(self.txs, self.postings_tx, conditions)

    def search_blocks(self, conditions: Sequence[Condition]) -> list[_Entry]:
        return self._search(self.blocks, self.postings_block, conditions)


_INDEXES: weakref.WeakKeyDictionary[Any, ChainIndex] = weakref.WeakKeyDictionary()


def index_of(node: NodeAPI) -> ChainIndex:
    """The one index of a node (made on its first search, dropped with the node)."""
    found = _INDEXES.get(node)
    if found is None:
        found = _INDEXES[node] = ChainIndex()
    return found
