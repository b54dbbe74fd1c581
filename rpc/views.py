"""The plain data :class:`rpc.api.NodeAPI` returns: frozen views of blocks, txs, results, peers.

Free-form parts (block headers, genesis, clearing query answers) are plain values built from
``dict``, ``list``, ``str``, ``int``, ``bool``, ``bytes`` and ``None`` (dataclasses and enums
are accepted too and rendered by :mod:`rpc.render`).
"""


from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TxResultView:
    """The application's verdict on one tx (check_tx or deliver_tx). ``code`` 0 is success."""

    code: int = 0
    log: str = ""
    codespace: str = ""
    events: Sequence[Mapping[str, Any]] = ()  # each {"type": str, "attrs": {str: value}} (state/)
    gas_wanted: int = 0
    gas_used: int = 0
    kind: str = ""  # the tx kind the app decoded ("transfer", "trade", ...); "" if undecodable
    sender: bytes = b""  # the address that signed it, as the app read it


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
    raw: bytes = b""
    """Canonical encoding of ``{"header", "commit"}`` (plain forms) for clients that verify the
    signatures (a light client); empty when the node has no signed commit to give."""


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
class PersistentPeerView:
    """A configured persistent peer and the node's dialling of it."""

    node_id: str
    address: str
    """The configured multiaddr, the one dialled."""
    connected: bool
    since_ms: int
    """Unix ms: connected since, or down since (the node's start if never connected)."""
    dials: int = 0
    """Dials since the last stable connection."""
    next_dial_ms: int | None = None
    """Unix ms the next dial is due; None while connected or dialling."""
    last_error: str = ""


@dataclass(frozen=True)
class NetInfo:
    listening: bool
    listeners: Sequence[str]
    peers: Sequence[PeerView] = ()
    persistent_peers: Sequence[PersistentPeerView] = ()


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


@dataclass(frozen=True)
class RoundStateView:
    """Where consensus is: the height being decided, its round and step, when the height
    started, and the blocks it holds (a proposal, a lock, a valid block; empty if none)."""

    height: int
    round: int
    step: str  # NewHeight, Propose, Prevote, Precommit, Commit
    start_time_ns: int = 0
    proposal_block_hash: bytes = b""
    locked_block_hash: bytes = b""
    locked_round: int = -1
    valid_block_hash: bytes = b""
    valid_round: int = -1
