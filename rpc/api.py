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
- A tx's hash is ``consensus.hashing.sha256(tx_bytes)``.
- Methods may be called concurrently from many connections; they must not block the trio loop
  for long (slow work goes to a worker thread inside the node).
- Clearing queries take decoded arguments (addresses as 20 raw bytes, integers) and return what
  ``state/queries.py`` returns, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from rpc.events import EventBus


@dataclass(frozen=True)
class TxResultView:
    """The application's verdict on one tx (check_tx or deliver_tx). ``code`` 0 is success."""

    code: int = 0
    log: str = ""
    codespace: str = ""
    events: Sequence[Mapping[str, Any]] = ()  # each {"type": str, "attrs": {str: value}} (state/)
    gas_wanted: int = 0
    gas_used: int = 0


@dataclass(frozen=True)
class TxRecord:
    """A committed tx: where it is, what it was, and what it did."""

    hash: bytes
    height: int
    index: int
    tx: bytes
    result: TxResultView
    tx_type: str = ""  # e.g. "trade", "transfer": lets subscribers filter by type
    accounts: Sequence[bytes] = ()  # addresses the tx touched: lets subscribers filter by account


@dataclass(frozen=True)
class BlockView:
    """One committed block. ``header`` and ``last_commit`` are plain data or the consensus
    dataclasses themselves (``consensus.types.Header``/``Commit``): both render (bytes as hex).
    ``header`` must expose ``app_hash`` (a key or attribute) for clients comparing nodes."""

    height: int
    hash: bytes
    header: Any
    txs: Sequence[bytes]
    last_commit: Any = None
    evidence: Sequence[Any] = ()
    size: int = 0  # encoded size in bytes


@dataclass(frozen=True)
class BlockResults:
    """What executing a block produced."""

    height: int
    txs_results: Sequence[TxResultView]
    begin_block_events: Sequence[Mapping[str, Any]] = ()
    end_block_events: Sequence[Mapping[str, Any]] = ()  # liquidations, ADL, oracle, funding...
    validator_updates: Sequence[Mapping[str, Any]] = ()
    app_hash: bytes = b""  # the state root after this block


@dataclass(frozen=True)
class CommitView:
    """The signed header of a height: the header and the +2/3 precommits that commit it."""

    height: int
    header: Any  # a Mapping or consensus.types.Header
    commit: Any  # a Mapping or consensus.types.Commit
    block_hash: bytes
    canonical: bool = True


@dataclass(frozen=True)
class ValidatorView:
    address: bytes
    pub_key: bytes
    voting_power: int
    proposer_priority: int = 0


@dataclass(frozen=True)
class NodeStatus:
    """Everything ``status`` reports (CometBFT's node_info, sync_info and validator_info)."""

    node_id: str
    moniker: str
    chain_id: str
    version: str
    listen_addr: str
    rpc_addr: str
    latest_block_height: int
    latest_block_hash: bytes
    latest_app_hash: bytes
    latest_block_time_ns: int
    earliest_block_height: int
    catching_up: bool
    validator_address: bytes = b""
    validator_pub_key: bytes = b""
    validator_voting_power: int = 0


@dataclass(frozen=True)
class PeerView:
    node_id: str
    address: str
    moniker: str = ""
    is_outbound: bool = False


@dataclass(frozen=True)
class NetInfo:
    listening: bool
    listeners: Sequence[str]
    peers: Sequence[PeerView] = ()


@dataclass(frozen=True)
class QueryResult:
    """Answer to a raw store query (``query``); ``proof`` is plain data a client verifies."""

    code: int = 0
    log: str = ""
    key: bytes = b""
    value: bytes | None = None
    height: int = 0
    proof: Any = None


@dataclass(frozen=True)
class LiquidationPage:
    """One page of liquidation events in a height range, oldest first."""

    items: Sequence[Any]
    total: int
    total_exact: bool = True  # False: the range holds more events than were counted


@dataclass(frozen=True)
class MempoolInfo:
    n_txs: int
    total_bytes: int
    txs: Sequence[bytes] = field(default_factory=tuple)


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
    async def markets(self, height: int | None) -> Any: ...
    async def market(self, market_id: str, height: int | None) -> Any: ...
    async def prices(self, height: int | None) -> Any: ...
    async def insurance_fund(self, height: int | None) -> Any: ...
    async def liquidations(
        self, min_height: int, max_height: int, offset: int, limit: int
    ) -> LiquidationPage | Mapping[str, Any]:
        """A LiquidationPage, or state/queries.py's ``{"items", "total", "total_exact"}``."""
        ...
    async def account_health(self, address: bytes, height: int | None) -> Any:
        """Equity, IMR, MMR and distance to liquidation of one account."""
        ...

    async def check_margin(self, address: bytes, order: Mapping[str, Any]) -> Any:
        """What-if: would this order (market, side, size, price) pass the margin check now,
        and what would the account look like after it."""
        ...
