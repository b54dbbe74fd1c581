"""Event fan-out from the node to subscribers, with CometBFT-style subscription queries.

The node calls :func:`publish_block` once per committed block. Each published message carries a
map of composite keys (``tm.event``, ``tx.hash``, ``tx.account``, ``clearing.market`` ...) to
values; a subscription query (CometBFT's query language, :mod:`rpc.comet.query`) is matched
against it:

    tm.event = 'NewBlock'
    tm.event = 'Tx' AND tx.account = 'clr1...'
    tm.event = 'Tx' AND tx.type = 'trade'
    tm.event = 'Liquidation'            (also 'Trade', 'Deleverage', 'OraclePrice', 'InsuranceFund',
                                         'Funding'; 'Clearing' = every application event)
    tm.event = 'Clearing' AND clearing.account = 'clr1...'

Publishing never blocks and never waits on a subscriber: each subscription has a bounded queue;
one that is full is closed and flagged ``overflowed`` (the WebSocket handler then tells the client
and disconnects it). A slow client therefore costs the node nothing but the dropped queue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from rpc.views import BlockResults, BlockView, TxRecord
from rpc.comet import shapes as comet
from rpc.comet.query import Query
from rpc.comet.query import QueryError as QueryError  # rpc/server.py parses subscriptions
from rpc.comet.query import parse_query as parse_query
from rpc.render import format_address, render

DEFAULT_QUEUE_SIZE = 256

# Application event types (lower-cased) -> the ``tm.event`` name subscribers use.
CLEARING_EVENT_NAMES = {
    "trade": "Trade",
    "fill_rejected": "FillRejected",
    "liquidation": "Liquidation",
    "liquidation_fill": "Liquidation",
    "liquidation_fee": "Liquidation",
    "liquidation_done": "Liquidation",
    "insurance_cover": "InsuranceFund",
    "deleverage": "Deleverage",
    "price": "OraclePrice",
    "oracle_report": "OracleReport",
    "funding": "Funding",
    "deposit": "Deposit",
    "withdraw": "Withdraw",
    "transfer": "Transfer",
}
# Event attributes whose values name accounts (for ``clearing.account`` filtering).
ACCOUNT_ATTRIBUTES = frozenset(
    {"account", "address", "buyer", "seller", "counterparty", "sender", "to", "operator", "feeder",
     "provider", "voter", "validator", "maker", "taker"}
)


@dataclass
class Message:
    """One published event: its filter keys and a lazily rendered JSON body."""

    keys: dict[str, list[str]]
    make_data: Callable[[], Any]
    _data: Any = None

    @property
    def data(self) -> Any:
        if self._data is None:
            self._data = self.make_data()
        return self._data

    def events_json(self) -> dict[str, list[str]]:
        return self.keys


@dataclass(eq=False)
class Subscription:
    query: Query
    send: trio.MemorySendChannel[Message]
    receive: trio.MemoryReceiveChannel[Message]
    overflowed: bool = False


@dataclass(eq=False)
class TxWait:
    """Everyone waiting for one tx: one event, set once with the tx's record."""

    done: trio.Event = field(default_factory=trio.Event)
    record: TxRecord | None = None
    waiters: int = 0


@dataclass
class EventBus:
    """Subscriptions and the non-blocking publish the node calls."""

    queue_size: int = DEFAULT_QUEUE_SIZE
    _subscriptions: set[Subscription] = field(default_factory=set)
    _tx_waiters: dict[bytes, TxWait] = field(default_factory=dict)
    published: int = 0

    def subscribe(self, query: Query, queue_size: int | None = None) -> Subscription:
        send, receive = trio.open_memory_channel[Message](queue_size or self.queue_size)
        subscription = Subscription(query, send, receive)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        subscription.send.close()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def wanted_events(self) -> set[str] | None:
        """The ``tm.event`` values some subscription asks for; None if one takes any event."""
        wanted: set[str] = set()
        for subscription in self._subscriptions:
            names = [str(c.operand) for c in subscription.query.conditions
                     if c.key == "tm.event" and c.op == "="]
            if not names:
                return None
            wanted.update(names)
        return wanted

    @contextmanager
    def waiting_for_tx(self, tx_hash: bytes) -> Iterator[TxWait]:
        """The shared wait for a tx: ``wait.done`` is set, with ``wait.record``, when a block
        including it is published. One entry per hash however many clients wait on it; a dict
        lookup per committed tx (``broadcast_tx_commit``); gone when its last waiter leaves."""
        wait = self._tx_waiters.get(tx_hash)
        if wait is None:
            wait = self._tx_waiters[tx_hash] = TxWait()
        wait.waiters += 1
        try:
            yield wait
        finally:
            wait.waiters -= 1
            if wait.waiters == 0 and self._tx_waiters.get(tx_hash) is wait:
                del self._tx_waiters[tx_hash]

    @property
    def tx_waiters(self) -> int:
        """Hashes someone waits on."""
        return len(self._tx_waiters)

    def notify_tx(self, record: TxRecord) -> None:
        wait = self._tx_waiters.pop(record.hash, None)
        if wait is not None:
            wait.record = record
            wait.done.set()

    def publish(self, message: Message) -> int:
        """Deliver to every matching subscription; returns how many received it."""
        self.published += 1
        delivered = 0
        for subscription in list(self._subscriptions):
            if not subscription.query.matches(message.keys):
                continue
            try:
                subscription.send.send_nowait(message)
                delivered += 1
            except trio.WouldBlock:
                subscription.overflowed = True
                self.unsubscribe(subscription)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                self.unsubscribe(subscription)
        return delivered


# --- what the node publishes -------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        if len(value) == 20:
            return format_address(bytes(value))
        return bytes(value).hex().upper()
    return str(value)


def new_block_message(block: BlockView, results: BlockResults | None) -> Message:
    def data() -> Any:
        value: dict[str, Any] = {"block": comet.block(block), "block_id": comet.block_id(block.hash)}
        if results is not None:
            value["result_finalize_block"] = comet.finalize_block(results)
        return {"type": "tendermint/event/NewBlock", "value": value}

    keys = {"tm.event": ["NewBlock"], "block.height": [str(block.height)]}
    return Message(keys, data)


def new_block_header_message(block: BlockView) -> Message:
    keys = {"tm.event": ["NewBlockHeader"], "block.height": [str(block.height)]}
    return Message(keys, lambda: {"type": "tendermint/event/NewBlockHeader",
                                  "value": {"header": comet.header(block.header)}})


def tx_message(record: TxRecord) -> Message:
    """CometBFT's Tx event (``value.TxResult`` with ``result``); its keys are CometBFT's
    (``tx.hash``, ``tx.height``, every ``<event>.<attribute>``, ``message.sender``) and ours
    (``tx.type``, ``tx.account``, ``tx.code``)."""
    value = comet.tx_event_value(record)
    keys: dict[str, list[str]] = {
        key: values for key, values in comet.event_keys(value["TxResult"]["result"]["events"]).items()
    }
    keys.update({
        "tm.event": ["Tx"],
        "tx.hash": [record.hash.hex().upper(), record.hash.hex()],
        "tx.height": [str(record.height)],
        "tx.code": [str(record.result.code)],
    })
    if record.tx_type:
        keys["tx.type"] = [record.tx_type]
    if record.accounts:
        keys["tx.account"] = [_text(a) for a in record.accounts]
    return Message(keys, lambda: {"type": "tendermint/event/Tx", "value": value})


def clearing_message(height: int, event: Mapping[str, Any], tx_hash: bytes | None = None) -> Message:
    kind = str(event.get("type", ""))
    attributes = event.get("attrs", event.get("attributes", {})) or {}
    names = ["Clearing"]
    alias = CLEARING_EVENT_NAMES.get(kind.lower())
    if alias:
        names.append(alias)
    keys: dict[str, list[str]] = {
        "tm.event": names,
        "clearing.type": [kind],
        "clearing.height": [str(height)],
    }
    if isinstance(attributes, Mapping):
        accounts = [_text(v) for k, v in attributes.items() if k in ACCOUNT_ATTRIBUTES and v is not None]
        if accounts:
            keys["clearing.account"] = accounts
        for name in ("market", "market_id", "asset"):
            if name in attributes:
                keys["clearing.market"] = [_text(attributes[name])]
    body: dict[str, Any] = {"height": height, "event": event}
    if tx_hash is not None:
        body["tx_hash"] = tx_hash

    return Message(keys, lambda: {"type": f"clearchain/event/{alias or 'Clearing'}", "value": render(body)})


def block_messages(
    block: BlockView, results: BlockResults | None, txs: Iterable[TxRecord], wanted: set[str] | None = None
) -> list[Message]:
    """Every message one committed block produces, in order: block, txs, clearing events.

    ``wanted`` (from :meth:`EventBus.wanted_events`) skips kinds nobody subscribed to, so a
    NewBlock-only audience costs nothing per tx.
    """
    every = wanted is None
    messages = [new_block_message(block, results)] if every or "NewBlock" in wanted else []
    if every or "NewBlockHeader" in wanted:
        messages.append(new_block_header_message(block))
    want_txs = every or "Tx" in wanted
    want_clearing = every or bool(wanted - {"NewBlock", "NewBlockHeader", "Tx"})
    if not (want_txs or want_clearing):
        return messages
    for record in txs:
        if want_txs:
            messages.append(tx_message(record))
        if want_clearing:
            for event in record.result.events:
                messages.append(clearing_message(block.height, event, record.hash))
    if results is not None and want_clearing:
        for event in list(results.begin_block_events) + list(results.end_block_events):
            messages.append(clearing_message(block.height, event))
    return messages


def publish_block(
    bus: EventBus, block: BlockView, results: BlockResults | None, txs: Iterable[TxRecord]
) -> None:
    """The node's one call after each commit. Never blocks; cheap when nobody listens."""
    txs = list(txs)
    if bus._tx_waiters:
        for record in txs:
            bus.notify_tx(record)
    if not bus.subscriber_count:
        bus.published += 1
        return
    for message in block_messages(block, results, txs, bus.wanted_events()):
        bus.publish(message)
