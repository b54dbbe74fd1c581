"""Typed answers of every query method: one frozen dataclass per result, parsed from JSON.

The CometBFT-standard methods (``status``, ``block``, ``commit``, ``validators``,
``block_results``, ``tx``, ``genesis``, broadcasts) are parsed in CometBFT v0.38's JSON shape
(its OpenAPI, ``rpc/openapi/openapi.yaml``): ``block_id`` is ``{hash, parts: {total, hash}}``,
commit signatures are objects, events are ``{type, attributes: [{key, value, index}]}``, times
are RFC3339 with nanoseconds, public keys ``{type, value (base64)}``. Integers are read whether
they come as JSON numbers or decimal strings (CometBFT sends both, by field), so no caller
converts. The clearing methods keep the node's own shapes. Every result keeps the JSON it was
parsed from in ``raw`` (what ``--json`` prints).
"""

from __future__ import annotations

import base64
import calendar
import dataclasses
import functools
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rpc.views import PeerView, PersistentPeerView

T = TypeVar("T")
Json = dict[str, Any]

_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)\Z")


def time_ns(text: str) -> int:
    """Nanoseconds since the Unix epoch of an RFC3339 time (CometBFT's ``time`` fields)."""
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"not an RFC3339 time: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    seconds = calendar.timegm((int(year), int(month), int(day), int(hour), int(minute), int(second)))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * 1_000_000_000 + int((fraction or "").ljust(9, "0"))


def _hex(value: Any) -> bytes:
    return bytes.fromhex(value or "")


def _b64(value: Any) -> bytes:
    return base64.b64decode(value or "")


def _int(value: Any, default: int = 0) -> int:
    return default if value is None or value == "" else int(value)


def _raw() -> Any:
    return field(default_factory=dict, repr=False, compare=False)


def flat(cls: type[T], source: Mapping[str, Any], /, **parsed: Any) -> T:
    """``cls`` from a JSON object whose fields need no more than their annotated scalar type
    (int from a number or decimal string, ``int | None``, str, bool, ``dict[str, int]``);
    ``parsed`` gives the fields that need more. Missing fields take their defaults."""
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        if item.name in parsed:
            values[item.name] = parsed[item.name]
        elif item.name == "raw":
            values["raw"] = source
        elif item.name in source:
            values[item.name] = _scalar(hints[item.name], source[item.name])
    return cls(**values)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A result class's field types (``typing.get_type_hints`` costs ~30 us a call)."""
    return typing.get_type_hints(cls)


def _scalar(hint: Any, value: Any) -> Any:
    if hint is int:
        return int(value)
    if hint == (int | None):
        return None if value is None else int(value)
    if hint == dict[str, int]:
        return {str(k): int(v) for k, v in (value or {}).items()}
    if hint is bool:
        return bool(value)
    if hint is str:
        return "" if value is None else str(value)
    return value


# --- CometBFT v0.38 shapes ---------------------------------------------------------------------


@dataclass(frozen=True)
class BlockId:
    hash: bytes
    parts_total: int = 0
    parts_hash: bytes = b""

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> BlockId:
        data = data or {}
        parts = data.get("parts") or {}
        return cls(_hex(data.get("hash")), _int(parts.get("total")), _hex(parts.get("hash")))


@dataclass(frozen=True)
class PubKey:
    type: str
    value: bytes

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> PubKey:
        data = data or {}
        return cls(str(data.get("type", "")), _b64(data.get("value")))


@dataclass(frozen=True)
class Header:
    chain_id: str
    height: int
    time_ns: int
    last_block_id: BlockId
    last_commit_hash: bytes = b""
    data_hash: bytes = b""
    validators_hash: bytes = b""
    next_validators_hash: bytes = b""
    consensus_hash: bytes = b""
    app_hash: bytes = b""
    last_results_hash: bytes = b""
    evidence_hash: bytes = b""
    proposer_address: bytes = b""
    version_block: int = 0
    version_app: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Header:
        version = data.get("version") or {}
        hashes = {name: _hex(data.get(name)) for name in (
            "last_commit_hash", "data_hash", "validators_hash", "next_validators_hash",
            "consensus_hash", "app_hash", "last_results_hash", "evidence_hash", "proposer_address")}
        return cls(str(data["chain_id"]), int(data["height"]), time_ns(data["time"]),
                   BlockId.from_json(data.get("last_block_id")), **hashes,
                   version_block=_int(version.get("block")), version_app=_int(version.get("app")))


BLOCK_ID_FLAG_ABSENT, BLOCK_ID_FLAG_COMMIT, BLOCK_ID_FLAG_NIL = 1, 2, 3
"""CometBFT's ``BlockIDFlag`` values."""


@dataclass(frozen=True)
class CommitSig:
    block_id_flag: int
    validator_address: bytes
    timestamp_ns: int
    signature: bytes

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CommitSig:
        stamp = data.get("timestamp")
        return cls(int(data["block_id_flag"]), _hex(data.get("validator_address")),
                   time_ns(stamp) if stamp else 0, _b64(data.get("signature")))


@dataclass(frozen=True)
class Commit:
    height: int
    round: int
    block_id: BlockId
    signatures: tuple[CommitSig, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Commit:
        data = data or {}
        return cls(_int(data.get("height")), _int(data.get("round")),
                   BlockId.from_json(data.get("block_id")),
                   tuple(CommitSig.from_json(s) for s in data.get("signatures") or ()))


@dataclass(frozen=True)
class Block:
    """``block`` and ``block_by_hash``."""

    block_id: BlockId
    header: Header
    txs: tuple[bytes, ...]
    last_commit: Commit
    evidence: tuple[Any, ...] = ()
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> Block:
        block = data["block"]
        return cls(BlockId.from_json(data["block_id"]), Header.from_json(block["header"]),
                   tuple(_b64(t) for t in (block.get("data") or {}).get("txs") or ()),
                   Commit.from_json(block.get("last_commit")),
                   tuple((block.get("evidence") or {}).get("evidence") or ()), data)

    @property
    def height(self) -> int:
        return self.header.height


@dataclass(frozen=True)
class BlockMeta:
    block_id: BlockId
    block_size: int
    header: Header
    num_txs: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BlockMeta:
        return cls(BlockId.from_json(data["block_id"]), _int(data.get("block_size")),
                   Header.from_json(data["header"]), _int(data.get("num_txs")))


@dataclass(frozen=True)
class Blockchain:
    """``blockchain``: block metas from the highest asked down."""

    last_height: int
    block_metas: tuple[BlockMeta, ...]
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> Blockchain:
        return cls(int(data["last_height"]),
                   tuple(BlockMeta.from_json(m) for m in data.get("block_metas") or ()), data)


@dataclass(frozen=True)
class SignedHeader:
    """``commit``."""

    header: Header
    commit: Commit
    canonical: bool
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> SignedHeader:
        signed = data["signed_header"]
        return cls(Header.from_json(signed["header"]), Commit.from_json(signed["commit"]),
                   bool(data.get("canonical")), data)


@dataclass(frozen=True)
class Event:
    """An ABCI event; ``attributes`` in their order, as (key, value) pairs."""

    type: str
    attributes: tuple[tuple[str, str], ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        return cls(str(data["type"]), tuple((str(a["key"]), "" if a.get("value") is None else str(a["value"]))
                                            for a in data.get("attributes") or ()))

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of ``key``."""
        return next((v for k, v in self.attributes if k == key), default)

    def as_dict(self) -> dict[str, str]:
        return dict(self.attributes)


def _events(items: Any) -> tuple[Event, ...]:
    return tuple(Event.from_json(e) for e in items or ())


@dataclass(frozen=True)
class TxResult:
    """An application verdict (CheckTx or a tx's ExecTxResult); ``code`` 0 is success."""

    code: int
    log: str = ""
    codespace: str = ""
    data: bytes = b""
    gas_wanted: int = 0
    gas_used: int = 0
    events: tuple[Event, ...] = ()
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> TxResult:
        return flat(cls, data, data=_b64(data.get("data")), events=_events(data.get("events")))

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass(frozen=True)
class TxInfo:
    """``tx``: a committed tx, where it is and what it did."""

    hash: bytes
    height: int
    index: int
    tx: bytes
    result: TxResult
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> TxInfo:
        return cls(_hex(data["hash"]), int(data["height"]), int(data["index"]), _b64(data.get("tx")),
                   TxResult.from_json(data["tx_result"]), data)


@dataclass(frozen=True)
class TxSearch:
    """``tx_search``: one page of committed txs matching a query, and how many match in all."""

    txs: tuple[TxInfo, ...]
    total_count: int
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> TxSearch:
        return cls(tuple(TxInfo.from_json(t) for t in data.get("txs") or ()), int(data["total_count"]), data)


@dataclass(frozen=True)
class BlockSearch:
    """``block_search``: one page of blocks matching a query, and how many match in all."""

    blocks: tuple[Block, ...]
    total_count: int
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> BlockSearch:
        return cls(tuple(Block.from_json(b) for b in data.get("blocks") or ()), int(data["total_count"]), data)


@dataclass(frozen=True)
class AbciInfo:
    """``abci_info``: the application's name, version and last committed height and app hash."""

    data: str
    version: str
    app_version: int
    last_block_height: int
    last_block_app_hash: bytes
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> AbciInfo:
        response = data["response"]
        return cls(str(response.get("data", "")), str(response.get("version", "")),
                   _int(response.get("app_version")), _int(response.get("last_block_height")),
                   _b64(response.get("last_block_app_hash")), data)


@dataclass(frozen=True)
class ConsensusParams:
    """``consensus_params`` at a height (CometBFT's ConsensusParams; this chain has no gas)."""

    block_height: int
    max_block_bytes: int
    max_gas: int
    evidence_max_age_blocks: int
    pub_key_types: tuple[str, ...]
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> ConsensusParams:
        params = data["consensus_params"]
        return cls(int(data["block_height"]), int(params["block"]["max_bytes"]), int(params["block"]["max_gas"]),
                   int(params["evidence"]["max_age_num_blocks"]),
                   tuple(params["validator"]["pub_key_types"]), data)


@dataclass(frozen=True)
class RoundState:
    """``consensus_state``: the height, round and step being decided, and the block hashes the
    node proposes, is locked on and holds as valid (empty when none)."""

    height: int
    round: int
    step: int
    proposal_block_hash: bytes
    locked_block_hash: bytes
    valid_block_hash: bytes
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> RoundState:
        state = data["round_state"]
        height, round_, step = (int(part) for part in state["height/round/step"].split("/"))
        return cls(height, round_, step, _hex(state.get("proposal_block_hash")),
                   _hex(state.get("locked_block_hash")), _hex(state.get("valid_block_hash")), data)


@dataclass(frozen=True)
class BlockResults:
    """``block_results`` (v0.38: one ``finalize_block_events`` list, no begin/end split)."""

    height: int
    txs_results: tuple[TxResult, ...]
    finalize_block_events: tuple[Event, ...]
    validator_updates: tuple[Any, ...]
    app_hash: bytes
    """The app hash after the block (base64 in CometBFT v0.38's block_results: Go []byte)."""
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> BlockResults:
        return cls(int(data["height"]), tuple(TxResult.from_json(r) for r in data.get("txs_results") or ()),
                   _events(data.get("finalize_block_events")),
                   tuple(data.get("validator_updates") or ()), _b64(data.get("app_hash")), data)


@dataclass(frozen=True)
class Validator:
    address: bytes
    pub_key: PubKey
    voting_power: int
    proposer_priority: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Validator:
        return cls(_hex(data["address"]), PubKey.from_json(data["pub_key"]), int(data["voting_power"]),
                   _int(data.get("proposer_priority")))


@dataclass(frozen=True)
class Validators:
    """``validators``: one page of the set at ``block_height``."""

    block_height: int
    validators: tuple[Validator, ...]
    count: int
    total: int
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> Validators:
        return cls(int(data["block_height"]), tuple(Validator.from_json(v) for v in data["validators"]),
                   int(data["count"]), int(data["total"]), data)


@dataclass(frozen=True)
class GenesisValidator:
    address: bytes
    pub_key: PubKey
    power: int
    name: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GenesisValidator:
        return cls(_hex(data.get("address")), PubKey.from_json(data["pub_key"]), int(data["power"]),
                   str(data.get("name", "")))


@dataclass(frozen=True)
class Genesis:
    """``genesis``; the clearing genesis is ``app_state``, as the node's own genesis.json has it."""

    chain_id: str
    genesis_time_ns: int
    initial_height: int
    validators: tuple[GenesisValidator, ...]
    app_hash: bytes
    consensus_params: Json
    app_state: Json
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> Genesis:
        doc = data["genesis"]
        return cls(str(doc["chain_id"]), time_ns(doc["genesis_time"]), _int(doc.get("initial_height"), 1),
                   tuple(GenesisValidator.from_json(v) for v in doc.get("validators") or ()),
                   _hex(doc.get("app_hash")), dict(doc.get("consensus_params") or {}),
                   dict(doc.get("app_state") or {}), data)

    @property
    def min_tx_fee(self) -> int:
        return _int(self.app_state.get("min_tx_fee"))


@dataclass(frozen=True)
class Status:
    """``status``."""

    node_id: str
    network: str
    moniker: str
    version: str
    listen_addr: str
    latest_block_height: int
    latest_block_hash: bytes
    latest_app_hash: bytes
    latest_block_time_ns: int
    earliest_block_height: int
    catching_up: bool
    validator_address: bytes
    validator_pub_key: PubKey
    validator_voting_power: int
    other: Json = field(default_factory=dict)
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> Status:
        info, sync, validator = data["node_info"], data["sync_info"], data.get("validator_info") or {}
        stamp = sync.get("latest_block_time")
        return cls(str(info["id"]), str(info["network"]), str(info.get("moniker", "")),
                   str(info.get("version", "")), str(info.get("listen_addr", "")),
                   int(sync["latest_block_height"]), _hex(sync.get("latest_block_hash")),
                   _hex(sync.get("latest_app_hash")), time_ns(stamp) if stamp else 0,
                   _int(sync.get("earliest_block_height")), bool(sync.get("catching_up")),
                   _hex(validator.get("address")), PubKey.from_json(validator.get("pub_key")),
                   _int(validator.get("voting_power")), dict(info.get("other") or {}), data)

    @property
    def chain_id(self) -> str:
        return self.network

    @property
    def height(self) -> int:
        return self.latest_block_height


@dataclass(frozen=True)
class Broadcast:
    """``broadcast_tx_sync``/``_async`` (async: code 0 means only "handed over")."""

    code: int
    hash: bytes
    log: str = ""
    codespace: str = ""
    data: bytes = b""
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> Broadcast:
        return flat(cls, data, hash=_hex(data["hash"]), data=_b64(data.get("data")))


@dataclass(frozen=True)
class Committed:
    """``broadcast_tx_commit``: CheckTx's verdict and, once included, the tx's result."""

    check_tx: TxResult
    tx_result: TxResult | None
    hash: bytes
    height: int
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> Committed:
        result = data.get("tx_result")
        return cls(TxResult.from_json(data["check_tx"]), None if result is None else TxResult.from_json(result),
                   _hex(data["hash"]), _int(data.get("height")), data)


@dataclass(frozen=True)
class CheckedTx:
    """``check_tx``: the verdict without entering the mempool."""

    result: TxResult
    hash: bytes
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> CheckedTx:
        return cls(TxResult.from_json(data), _hex(data["hash"]), data)


# --- the node's own shapes ---------------------------------------------------------------------


@dataclass(frozen=True)
class NetInfo:
    """``net_info``; peers as the node's own views of them (``rpc.views``)."""

    listening: bool
    listeners: tuple[str, ...]
    peers: tuple[PeerView, ...]
    persistent_peers: tuple[PersistentPeerView, ...]
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> NetInfo:
        # node_id as the node knows it: the libp2p id (CometBFT's 40-hex ``id`` is derived from it)
        peers = tuple(PeerView(str((p["node_info"].get("other") or {}).get("libp2p_id") or p["node_info"]["id"]),
                               str(p["node_info"].get("listen_addr", "")),
                               str(p["node_info"].get("moniker", "")), bool(p.get("is_outbound")))
                      for p in data.get("peers") or ())
        persistent = tuple(PersistentPeerView(
            str(p["id"]), str(p["address"]), bool(p["connected"]), _int(p.get("since_ms")), _int(p.get("dials")),
            None if p.get("next_dial_ms") is None else int(p["next_dial_ms"]), str(p.get("last_error") or ""))
            for p in data.get("persistent_peers") or ())
        return cls(bool(data.get("listening")), tuple(data.get("listeners") or ()), peers, persistent, data)


@dataclass(frozen=True)
class Mempool:
    """``unconfirmed_txs`` (``txs``: at most the asked limit) and ``num_unconfirmed_txs``."""

    n_txs: int
    total: int
    total_bytes: int
    txs: tuple[bytes, ...] = ()
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> Mempool:
        return flat(cls, data, txs=tuple(_b64(t) for t in data.get("txs") or ()))


@dataclass(frozen=True)
class QueryResponse:
    """``query``/``abci_query``: a store read; ``proof_ops`` as sent (``state.store`` checks it)."""

    code: int
    log: str
    key: bytes
    value: bytes | None
    height: int
    proof_ops: Any = None
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> QueryResponse:
        response = data["response"]
        value = response.get("value")
        return cls(_int(response.get("code")), str(response.get("log", "")), _b64(response.get("key")),
                   None if value is None else _b64(value), _int(response.get("height")),
                   response.get("proofOps"), data)


@dataclass(frozen=True)
class Health:
    """``account_health``: quote micro-units; ``margin_ratio_ppm`` None without positions."""

    equity: int
    initial_margin: int
    maintenance_margin: int
    free_collateral: int
    liquidatable: bool
    distance_to_liquidation: int
    margin_ratio_ppm: int | None = None
    quote_asset: str = ""
    quote_decimals: int = 0
    """Places of the quote asset: every amount here is ``amount / 10**quote_decimals`` of it."""
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> Health:
        return flat(cls, data)


@dataclass(frozen=True)
class Position:
    market: str
    size: int
    oracle_price: int
    value: int
    cost: int
    unrealized_pnl: int
    pending_funding: int
    pending_funding_scaled: int = 0
    base_asset: str = ""
    quote_asset: str = ""
    size_decimals: int = 0
    price_decimals: int = 0
    quote_decimals: int = 0
    """Places of ``size`` (base asset), ``oracle_price`` (quote per base) and the quote amounts."""
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> Position:
        return flat(cls, data)


def positions_from_json(data: list[Json]) -> tuple[Position, ...]:
    return tuple(Position.from_json(p) for p in data)


@dataclass(frozen=True)
class Replay:
    next_height: int
    max_expiry: int
    replay_window_blocks: int
    min_tx_fee: int


@dataclass(frozen=True)
class Account:
    """``account``: balances (``quote`` and ``collateral`` in asset units), positions, health,
    and what a tx signed now needs (``replay``: the expiry range and the minimum fee)."""

    address: str
    quote: int
    collateral: dict[str, int]
    positions: tuple[Position, ...]
    health: Health
    replay: Replay
    quote_asset: str = ""
    decimals: dict[str, int] = field(default_factory=dict)
    """Places of every asset by symbol (``quote`` is in ``quote_asset``)."""
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> Account:
        return flat(cls, data, positions=positions_from_json(data.get("positions") or []),
                    health=Health.from_json(data["health"]), replay=flat(Replay, data["replay"]))


@dataclass(frozen=True)
class Market:
    """``market``/``markets``: a market's parameters and state (prices in its price units)."""

    id: str
    base_asset: str
    status: str
    oracle_price: int
    price_exponent: int
    size_exponent: int
    lot_size: int
    tick_size: int
    initial_margin_ppm: int
    maintenance_margin_ppm: int
    open_interest: int
    funding_index: int
    last_funding_rate_ppm: int
    next_funding_ms: int
    last_price_ms: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    breaker: str = ""
    reported_price: int = 0
    value_multiplier: int = 1
    funding_scale: int = 1
    funding_dust_scaled: int = 0
    """Funding rounding the market keeps, in ``funding_scale`` units of quote."""
    quote_asset: str = ""
    size_decimals: int = 0
    price_decimals: int = 0
    quote_decimals: int = 0
    """Places of sizes (``base_asset``), prices (quote per base) and quote amounts (open interest)."""
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> Market:
        return flat(cls, data)


@dataclass(frozen=True)
class Price:
    """One market's entry in ``prices``."""

    price: int
    price_exponent: int
    status: str
    last_price_ms: int
    reported_price: int = 0
    breaker: str = ""
    capped_blocks: int = 0
    price_decimals: int = 0
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> Price:
        return flat(cls, data)


def prices_from_json(data: Json) -> dict[str, Price]:
    return {market: Price.from_json(entry) for market, entry in data.items()}


@dataclass(frozen=True)
class InsuranceFund:
    insurance_fund: int
    insurance_collateral: dict[str, int]
    fee_pool: int
    socialized_loss: int
    deposits: dict[str, int]
    withdrawals: dict[str, int]
    withdrawal_seq: int
    quote_asset: str = ""
    decimals: dict[str, int] = field(default_factory=dict)
    """Places of every asset by symbol."""
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> InsuranceFund:
        return flat(cls, data)


@dataclass(frozen=True)
class Liquidations:
    """``liquidations``: one page of waterfall events (each a JSON object with its height)."""

    liquidations: tuple[Json, ...]
    total: int
    total_exact: bool
    page: int
    per_page: int
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> Liquidations:
        return flat(cls, data, liquidations=tuple(data.get("liquidations") or ()))


@dataclass(frozen=True)
class AssetInfo:
    """An asset's symbol and decimal places (collateral also names its pricing market)."""

    symbol: str
    decimals: int
    price_market: str = ""
    weight_ppm: int = 0
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> AssetInfo:
        return flat(cls, data)


@dataclass(frozen=True)
class Assets:
    """``assets``: the quote asset and the collateral assets, for showing amounts."""

    quote: AssetInfo
    collateral: tuple[AssetInfo, ...]
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> Assets:
        return flat(cls, data, quote=AssetInfo.from_json(data["quote"]),
                    collateral=tuple(AssetInfo.from_json(c) for c in data.get("collateral") or ()))


@dataclass(frozen=True)
class AccountAtRisk:
    """One account of ``accounts_at_risk``: equity against its margins, nearest first."""

    address: str
    equity: int
    initial_margin: int
    maintenance_margin: int
    margin_ratio_ppm: int
    liquidatable: bool
    distance_ppm: int
    positions: int
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> AccountAtRisk:
        return flat(cls, data)


@dataclass(frozen=True)
class AccountsAtRisk:
    """``accounts_at_risk``: one page from the node's liquidation index."""

    accounts: tuple[AccountAtRisk, ...]
    indexed: int
    index_ready: bool
    page: int
    per_page: int
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> AccountsAtRisk:
        return flat(cls, data, accounts=tuple(AccountAtRisk.from_json(a) for a in data.get("accounts") or ()))


@dataclass(frozen=True)
class MarginCheck:
    """``check_margin``: would the order pass, the fee, and equity/margins before and after."""

    allowed: bool
    reason: str
    fee: int = 0
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    raw: Json = _raw()

    @classmethod
    def from_json(cls, data: Json) -> MarginCheck:
        return flat(cls, data)
