"""The block context every step of a block reads and writes (execution-specs' ``BlockEnvironment``).

Tx handlers, governance and the waterfall take this narrow context, not the whole application:
the ledger (state), the block's height and time, the orders' fill records, pending proposals,
and where their effects go (touched accounts for the liquidation index, validator updates,
waterfall events logged under ``e/<height><index>``). ``ClearingApp`` builds one in
``begin_block`` and imports the steps; the steps never import the application.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from state.events import Event
from state.ledger import Ledger
from state.model import Market, event_key
from state.oracle import market_status
from state.order_records import OrderRecords


@dataclass
class BlockEnv:
    ledger: Ledger
    height: int
    time_ms: int
    orders: OrderRecords
    proposals: dict[bytes, dict[str, Any]]
    touched: set[bytes] = field(default_factory=set)  # accounts whose risk the block changed
    validator_updates: dict[bytes, int] = field(default_factory=dict)  # pub key -> power (0 removes)
    markets_changed: bool = False  # a market was added or changed: the liquidation index rebuilds
    event_seq: int = 0

    def touch(self, *addresses: bytes) -> None:
        self.touched.update(addresses)

    def emit(self, events: list[Event], ev: Event) -> None:
        """Append a waterfall event and keep it in the event log (``e/<height><index>``)."""
        events.append(ev)
        self.ledger.put_raw(event_key(self.height, self.event_seq), ev)
        self.event_seq += 1

    def market_status(self, market: Market) -> str:
        return market_status(market, self.time_ms, self.ledger.g.risk.oracle_staleness_ms)

    def market_active(self, market: Market) -> bool:
        return self.market_status(market) == "active"
