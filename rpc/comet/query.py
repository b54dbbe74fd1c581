"""CometBFT's query language, one parser for subscriptions and for tx/block search.

A query is conditions joined by ``AND``; a condition is ``key op operand`` with ``op`` one of
``=``, ``<``, ``<=``, ``>``, ``>=``, ``CONTAINS`` or ``EXISTS`` (no operand), the operand a
'quoted string' or a whole number (compared as numbers). ``tx.hash`` operands are upper-cased,
as hashes are shown. A query matches a map of keys to values when every condition holds for
one of its key's values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_QUERY_LENGTH = 512
MAX_CONDITIONS = 8

_CONDITION = re.compile(
    r"\s*(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)\s*"
    r"(?:(?P<exists>EXISTS)|(?P<op><=|>=|=|<|>|CONTAINS)\s*(?:'(?P<text>[^']*)'|(?P<number>-?[0-9]+(?:\.[0-9]+)?)))"
    r"\s*\Z",
    re.IGNORECASE,
)


class QueryError(ValueError):
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


@dataclass(frozen=True)
class Query:
    """A parsed query: its text (stripped) and conditions, all of which must hold."""

    text: str
    conditions: tuple[Condition, ...]

    def matches(self, keys: Mapping[str, Sequence[str]]) -> bool:
        return all(c.holds(keys.get(c.key, ())) for c in self.conditions)


def parse_query(text: Any) -> Query:
    if not isinstance(text, str) or not text.strip():
        raise QueryError("query must be a non-empty string such as tm.event='NewBlock' or tx.height=5")
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"query longer than {MAX_QUERY_LENGTH} characters")
    parts = re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE)
    if len(parts) > MAX_CONDITIONS:
        raise QueryError(f"more than {MAX_CONDITIONS} conditions")
    conditions = []
    for part in parts:
        match = _CONDITION.match(part)
        if match is None:
            raise QueryError(f"cannot parse condition {part.strip()!r}: expected key op 'value' "
                                   "(op: =, <, <=, >, >=, CONTAINS) or key EXISTS")
        if match["exists"]:
            conditions.append(Condition(match["key"], "EXISTS"))
            continue
        op = match["op"].upper()
        if match["number"] is not None:
            number = match["number"]
            if "." in number:
                raise QueryError(f"{part.strip()!r}: only whole numbers are indexed")
            operand: str | int = int(number)
        else:
            operand = match["text"]
        if op == "CONTAINS" and not isinstance(operand, str):
            raise QueryError(f"{part.strip()!r}: CONTAINS takes a quoted string")
        if match["key"].lower() == "tx.hash" and isinstance(operand, str):
            operand = operand.upper()
        conditions.append(Condition(match["key"], op, operand))
    return Query(text.strip(), tuple(conditions))
