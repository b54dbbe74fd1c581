"""The narrow interface between the RPC server and the node: ``NodeAPI`` and its view types.

The RPC layer never reaches into the node's stores, mempool or consensus; it calls the methods
below, all of which return plain data: the frozen dataclasses of this module, or for free-form
parts (block headers, genesis, clearing query answers) plain values built from ``dict``, ``list``,
``str``, ``int``, ``bool``, ``bytes`` and ``None`` (dataclasses and enums are accepted too and
rendered by :mod:`rpc.render`). The RPC layer turns every ``int`` into a decimal string and every
``bytes`` into upper-case hex, except raw transactions, which travel in base64.

Conventions the node must follow:
- ``height=None`` means "the latest committed height".
- A missing block/tx/account/market is reported by returning ``None`` (the RPC layer answers
  ``NOT_FOUND``); a height that is pruned or above the tip is reported by raising
  :class:`rpc.errors.RPCError` (``unavailable(...)``) or returning ``None``.
- A tx's hash is ``primitives.hashing.sha256(tx_bytes)``.
- Methods may be called concurrently from many connections; they must not block the trio loop
  for long (slow work goes to a worker thread inside the node).
- Clearing queries take decoded arguments (addresses as 20 raw bytes, integers) and return what
  ``state/queries.py`` returns, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from rpc.events import EventBus
from rpc.views import (
    BlockResults,
    BlockView,
    CommitView,
    LiquidationPage,
    MempoolInfo,
    NetInfo,
    NodeStatus,
    QueryResult,
    RoundStateView,
    TxRecord,
    TxResultView,
    ValidatorView,
)


@runtime_checkable
class NodeAPI(Protocol):
    """What the RPC server needs from a node. One object; the node implements it.

    ``events`` is the :class:`rpc.events.EventBus` the node publishes to after each commit
    (see :func:`rpc.events.publish_block`); the RPC server subscribes WebSocket clients to it.
    """

    events: EventBus

    # --- node and chain ---------------------------------------------------------------
    async def status(self) -> NodeStatus: ...
    async def net_info(self) -> NetInfo: ...
    async def genesis(self) -> Mapping[str, Any]: ...
    async def validators(self, height: int | None) -> tuple[int, Sequence[ValidatorView]]:
        """(the height answered, the validator set that signs that height)."""
        ...

    async def consensus_state(self) -> RoundStateView:
        """Where consensus is now (a node without consensus answers its next height, round 0)."""
        ...

    # --- blocks and txs ---------------------------------------------------------------
    async def block(self, height: int | None) -> BlockView | None: ...
    async def block_by_hash(self, block_hash: bytes) -> BlockView | None: ...
    async def block_results(self, height: int | None) -> BlockResults | None: ...
    async def commit(self, height: int | None) -> CommitView | None: ...
    async def tx(self, tx_hash: bytes) -> TxRecord | None: ...

    # --- mempool ----------------------------------------------------------------------
    async def check_tx(self, tx: bytes) -> TxResultView:
        """Run the app's checks against the latest state; never adds to the mempool."""
        ...

    async def broadcast_tx(self, tx: bytes) -> TxResultView:
        """check_tx, and on code 0 add to the mempool and gossip. A duplicate of a tx already
        in the mempool or committed is rejected with the app's/mempool's code and a log."""
        ...

    async def mempool(self, limit: int) -> MempoolInfo:
        """Size of the mempool and up to ``limit`` of its txs in reap order."""
        ...

    # --- state ------------------------------------------------------------------------
    async def query(self, path: str, data: bytes, height: int | None, prove: bool) -> QueryResult:
        ...

    # --- clearing (delegate to state/queries.py; None = not found) -------------------
    async def account(self, address: bytes, height: int | None) -> Any: ...
    async def positions(self, address: bytes, height: int | None) -> Any: ...
    async def assets(self) -> Any:
        """The quote and collateral assets: ``{"quote": {symbol, decimals}, "collateral": [...]}``."""
        ...
    async def markets(self, height: int | None) -> Any: ...
    async def market(self, market_id: str, height: int | None) -> Any: ...
    async def prices(self, height: int | None) -> Any: ...
    async def insurance_fund(self, height: int | None) -> Any: ...
    async def liquidations(
        self, min_height: int, max_height: int, offset: int, limit: int
    ) -> LiquidationPage | Mapping[str, Any]:
        """A LiquidationPage, or state/queries.py's ``{"items", "total", "total_exact"}``."""
        ...
    async def accounts_at_risk(self, offset: int, limit: int) -> Any:
        """The accounts nearest to liquidation, nearest first, from the liquidation index:
        state/queries.py's ``{"items", "indexed", "index_ready"}``; a page deeper than the node
        ranks exactly raises ``invalid_params``."""
        ...

    async def account_health(self, address: bytes, height: int | None) -> Any:
        """Equity, IMR, MMR and distance to liquidation of one account."""
        ...

    async def check_margin(self, address: bytes, order: Mapping[str, Any]) -> Any:
        """What-if: would this order (market, side, size, price) pass the margin check now,
        and what would the account look like after it."""
        ...
