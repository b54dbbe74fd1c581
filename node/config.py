"""The node's operator configuration: ``config/config.toml`` of a node home.

Everything here is node-local (addresses, limits, log level). Nothing in this file may change
what a block means: consensus-critical parameters live in the genesis, which every validator
shares. The consensus timeouts are the one overlap: the genesis gives the network's values and
an operator may override them locally (a slow node wants longer timeouts, never different blocks).

Read with :mod:`tomllib`, written with :mod:`tomli_w`. Validation is strict: an unknown key or a
value of the wrong type or range fails with a :class:`ConfigError` naming the field
(``p2p.max_frame_bytes must be at least 1024``), so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from rpc.limits import CONFIGURED as RPC_LIMITS
from rpc.limits import Limits

LOG_LEVELS = ("trace", "debug", "info", "warning", "error")
"""trace: debug, and the libraries' (py-libp2p) debug logs too."""
DEFAULT_P2P_PORT = 26656
DEFAULT_RPC_PORT = 26657
DEFAULT_PROMETHEUS_PORT = 26660


class ConfigError(ValueError):
    """A config file or value that cannot be used; the message names the field."""


@dataclass(frozen=True)
class NodeSection:
    moniker: str = "node"
    """A human name for this node, shown in logs and ``status``; not part of consensus."""
    log_level: str = "info"
    """One of debug, info, warning, error."""


@dataclass(frozen=True)
class P2PSection:
    listen_address: str = f"/ip4/0.0.0.0/tcp/{DEFAULT_P2P_PORT}"
    """libp2p multiaddr the node listens on (TCP)."""
    external_address: str = ""
    """Multiaddr peers should dial to reach us (empty: the listen address)."""
    persistent_peers: tuple[str, ...] = ()
    """Multiaddrs with a peer id (``/ip4/1.2.3.4/tcp/26656/p2p/12D3Koo...``), kept connected."""
    max_frame_bytes: int = 8 * 1024 * 1024
    """Largest frame accepted from or sent to a peer; a bigger one disconnects the peer."""
    send_queue_size: int = 4096
    """Messages queued per peer and protocol before senders wait (backpressure, never a drop)."""
    max_batch_bytes: int = 256 * 1024
    """Many small messages are packed into one frame up to this size (one write each)."""
    max_peers: int = 40
    """Most connected peers that are not persistent peers; a connection beyond it is closed at
    once (persistent peers are always accepted), so strangers cannot exhaust the node."""
    dial_backoff_min_ms: int = 200
    """Wait between the starts of the first two dials to a persistent peer that is down; doubles
    with each dial (jittered: drawn from its upper half). node/README.md, "Reconnecting"."""
    dial_backoff_max_ms: int = 10_000
    """Upper bound of that wait: once the network heals, a peer is dialled within it."""
    max_peers_per_address: int = 4
    """Most connected non-persistent peers from one IP address (0: no cap): one host minting
    peer ids cannot take every ``max_peers`` slot. Refusals are logged."""


@dataclass(frozen=True)
class RPCSection:
    """``[rpc]``: the listen address, and every :class:`rpc.limits.Limits` field under its own
    name (``max_open_connections = 200`` ...; the table in rpc/README.md), kept as ``limits``."""

    listen_address: str = f"127.0.0.1:{DEFAULT_RPC_PORT}"
    """host:port of the JSON-RPC HTTP/WebSocket server; empty disables RPC."""
    unsafe: bool = False
    """Expose unsafe (operator) methods; off by default."""
    limits: Limits = field(default_factory=Limits)
    """The server's limits; ``max_tx_bytes`` is ``mempool.max_tx_bytes``, not set here."""


@dataclass(frozen=True)
class MempoolSection:
    max_txs: int = 20_000
    """Most pending transactions held at once."""
    max_bytes: int = 8 * 1024 * 1024
    """Most bytes of pending transactions held at once: 8 blocks of the genesis's 1 MiB, a few
    seconds of backlog at capacity. Past that, txs are refused on their fee alone, cheaply; a
    64 MiB pool kept admitting (two signature checks per trade) while blocks waited, and an
    offered 2,400 trades/s for 20 s committed 191 and 447 trades/s against 1,093 and 848
    with 8 MiB (bench/e2e.py --ramp 2400 --seconds 20, alternating)."""
    max_tx_bytes: int = 64 * 1024
    """Largest single transaction accepted."""
    cache_size: int = 100_000
    """Recently seen tx hashes remembered to drop duplicates without checking them again."""
    recheck: bool = True
    """Re-run check_tx on the remaining txs after each commit."""
    max_queue_ms: int = 2_000
    """Longest wait in the mempool the node lets build up: once the txs of a committed block
    waited longer than this (their median), the queue is standing (txs arrive faster than
    blocks take them) and client txs are refused with JSON-RPC -32002 and a retry hint until
    a block's txs waited less (0: never on this ground). Admitted txs then wait about this
    long at most, and the CPU of checking txs that would only wait goes to blocks."""
    refuse_behind_blocks: int = 3
    """A node this many blocks below the highest height its peers report (or block-syncing)
    refuses client txs with JSON-RPC -32002 and a retry hint (0: never on this ground): it
    cannot tell whether they are still valid, and its check_tx would slow its catch-up."""


@dataclass(frozen=True)
class ConsensusSection:
    """Local overrides of the genesis timeouts, in milliseconds; 0 means use the genesis value."""

    timeout_propose_ms: int = 0
    timeout_propose_delta_ms: int = 0
    timeout_prevote_ms: int = 0
    timeout_prevote_delta_ms: int = 0
    timeout_precommit_ms: int = 0
    timeout_precommit_delta_ms: int = 0
    timeout_commit_ms: int = 0
    create_empty_blocks: bool = True
    """Propose blocks without txs (keeps heights moving; the testnet wants it)."""


@dataclass(frozen=True)
class StorageSection:
    keep_recent: int = 0
    """Blocks to keep below the tip (0 = keep everything; pruning never drops state roots).
    A store created with 1-15 keeps values in that many slots per key (cheaper writes), so it
    can later be lowered but not raised or set to 0 without syncing an empty home."""
    keep_blocks: int = 0
    """Blocks kept, the latest included (0 = keep every block). Older blocks, their commits,
    results and tx index entries are deleted in each new block's write batch; RPC answers a
    height below the earliest kept one with an error naming it (``status`` reports
    ``earliest_block_height``). Validator sets are kept (evidence up to 1,000 heights old
    is checked against them)."""


@dataclass(frozen=True)
class StatesyncSection:
    enable: bool = False
    """Start an empty home from a peer's snapshot (node/README.md, "State sync"): verified with
    a light client from ``trust_height``/``trust_hash`` over ``rpc_servers``, then block sync."""
    trust_height: int = 0
    """A height the operator trusts (its header hash is ``trust_hash``)."""
    trust_hash: str = ""
    """Hex hash of the header at ``trust_height`` (``clearchain`` RPC ``commit``: block_hash)."""
    rpc_servers: tuple[str, ...] = ()
    """RPC URLs for the light client: the first is its primary, the others its witnesses."""
    snapshot_interval: int = 0
    """Take a snapshot of the state every this many blocks, after the block commits (0: none).
    Cut in a worker thread from a read-only view of that version, kept under
    ``data/snapshots/`` and served to state-syncing peers (``/clearchain/snapshot/1``)."""
    snapshot_keep_recent: int = 2
    """Snapshots kept on disk, the newest (at least 1)."""
    chunk_bytes: int = 1 << 20
    """Largest chunk of a snapshot (one p2p message: at most half of p2p.max_frame_bytes)."""


@dataclass(frozen=True)
class InstrumentationSection:
    prometheus: bool = False
    """Serve Prometheus metrics (``clearchain_<subsystem>_<name>``, node/README.md "Metrics")
    at ``http://<prometheus_listen_addr>/metrics``; off by default, as in CometBFT."""
    prometheus_listen_addr: str = f"127.0.0.1:{DEFAULT_PROMETHEUS_PORT}"
    """host:port of the metrics endpoint (port 0: any free port, logged)."""


@dataclass(frozen=True)
class FaultInjectionSection:
    """``[fault_injection]``: faults the fault tests (tests/fault/) switch on in one node; all
    off by default, the section is not written to config.toml unless one is set, and the node
    logs a warning at start naming every one that is (node/faults.py)."""

    clock_offset_ms: int = 0
    """Added to this node's wall clock (node/clock.py): a validator with a skewed clock."""
    fsync_delay_ms: int = 0
    """Sleep before every block's synced write: a stalling disk."""
    byzantine_double_sign_UNSAFE: bool = False
    """Equivocate on purpose: every vote is also signed for a conflicting block id and every
    proposal for a second block, bypassing the double-sign protection. The validator WILL be
    jailed; never on a network that matters."""


@dataclass(frozen=True)
class Config:
    node: NodeSection = field(default_factory=NodeSection)
    p2p: P2PSection = field(default_factory=P2PSection)
    rpc: RPCSection = field(default_factory=RPCSection)
    mempool: MempoolSection = field(default_factory=MempoolSection)
    consensus: ConsensusSection = field(default_factory=ConsensusSection)
    storage: StorageSection = field(default_factory=StorageSection)
    statesync: StatesyncSection = field(default_factory=StatesyncSection)
    instrumentation: InstrumentationSection = field(default_factory=InstrumentationSection)
    fault_injection: FaultInjectionSection = field(default_factory=FaultInjectionSection)


_SECTION_TYPES = {
    "node": NodeSection,
    "p2p": P2PSection,
    "rpc": RPCSection,
    "mempool": MempoolSection,
    "consensus": ConsensusSection,
    "storage": StorageSection,
    "statesync": StatesyncSection,
    "instrumentation": InstrumentationSection,
    "fault_injection": FaultInjectionSection,
}

# --- validation -----------------------------------------------------------------------------


def _require(condition: bool, name: str, reason: str) -> None:
    if not condition:
        raise ConfigError(f"{name} {reason}")


def _check_multiaddr(name: str, text: str, need_peer_id: bool) -> None:
    from multiaddr import Multiaddr

    try:
        addr = Multiaddr(text)
    except Exception as exc:  # multiaddr raises several unrelated types
        raise ConfigError(f"{name} is not a valid multiaddr ({text!r}): {exc}") from exc
    protocols = {p.name for p in addr.protocols()}
    _require("tcp" in protocols, name, f"must be a TCP multiaddr, got {text!r}")
    _require(
        bool(protocols & {"ip4", "ip6", "dns", "dns4", "dns6"}),
        name, f"must name a host (ip4/ip6/dns), got {text!r}",
    )
    if need_peer_id:
        _require("p2p" in protocols, name, f"must end with /p2p/<peer id>, got {text!r}")


def _check_host_port(name: str, text: str) -> None:
    host, sep, port = text.rpartition(":")
    _require(bool(sep) and bool(host), name, f"must be host:port, got {text!r}")
    _require(port.isdigit() and 0 <= int(port) <= 65535, name, f"has an invalid port in {text!r}")


def validate(config: Config) -> Config:
    """Check ranges and formats; return the config unchanged or raise :class:`ConfigError`."""
    n, p, r, m, c, s = (config.node, config.p2p, config.rpc, config.mempool, config.consensus,
                        config.storage)
    _require(bool(n.moniker.strip()), "node.moniker", "must not be empty")
    _require(n.log_level in LOG_LEVELS, "node.log_level", f"must be one of {', '.join(LOG_LEVELS)}")
    _check_multiaddr("p2p.listen_address", p.listen_address, need_peer_id=False)
    if p.external_address:
        _check_multiaddr("p2p.external_address", p.external_address, need_peer_id=False)
    for index, peer in enumerate(p.persistent_peers):
        _check_multiaddr(f"p2p.persistent_peers[{index}]", peer, need_peer_id=True)
    _require(p.max_frame_bytes >= 1024, "p2p.max_frame_bytes", "must be at least 1024")
    _require(p.max_frame_bytes <= 256 * 1024 * 1024, "p2p.max_frame_bytes", "must be at most 256 MiB")
    _require(p.send_queue_size >= 1, "p2p.send_queue_size", "must be at least 1")
    _require(p.max_peers >= 0, "p2p.max_peers", "must not be negative")
    _require(p.max_peers_per_address >= 0, "p2p.max_peers_per_address", "must not be negative")
    _require(0 < p.max_batch_bytes <= p.max_frame_bytes, "p2p.max_batch_bytes",
             "must be positive and at most p2p.max_frame_bytes")
    _require(p.dial_backoff_min_ms >= 1, "p2p.dial_backoff_min_ms", "must be at least 1")
    _require(p.dial_backoff_max_ms >= p.dial_backoff_min_ms, "p2p.dial_backoff_max_ms",
             "must be at least p2p.dial_backoff_min_ms")
    if r.listen_address:
        _check_host_port("rpc.listen_address", r.listen_address)
    for name in ("max_txs", "max_bytes", "max_tx_bytes", "cache_size"):
        _require(getattr(m, name) >= 1, f"mempool.{name}", "must be at least 1")
    _require(m.max_tx_bytes <= m.max_bytes, "mempool.max_tx_bytes", "must be at most mempool.max_bytes")
    _require(m.refuse_behind_blocks >= 0, "mempool.refuse_behind_blocks", "must not be negative")
    _require(m.max_queue_ms >= 0, "mempool.max_queue_ms", "must not be negative")
    for f in dataclasses.fields(ConsensusSection):
        if f.name.endswith("_ms"):
            _require(getattr(c, f.name) >= 0, f"consensus.{f.name}", "must not be negative")
    _require(s.keep_recent >= 0, "storage.keep_recent", "must not be negative")
    _require(s.keep_blocks >= 0, "storage.keep_blocks", "must not be negative")
    ss = config.statesync
    if ss.enable:
        _require(ss.trust_height >= 1, "statesync.trust_height", "must be at least 1")
        _require(len(ss.trust_hash) == 64 and all(c in "0123456789abcdefABCDEF"
                                                  for c in ss.trust_hash),
                 "statesync.trust_hash", "must be 64 hex digits")
        _require(bool(ss.rpc_servers), "statesync.rpc_servers", "must name at least one server")
    _require(ss.snapshot_interval >= 0, "statesync.snapshot_interval", "must not be negative")
    _require(ss.snapshot_keep_recent >= 1, "statesync.snapshot_keep_recent", "must be at least 1")
    _require(1024 <= ss.chunk_bytes <= p.max_frame_bytes // 2, "statesync.chunk_bytes",
             "must be at least 1024 and at most half of p2p.max_frame_bytes")
    _check_host_port("instrumentation.prometheus_listen_addr",
                     config.instrumentation.prometheus_listen_addr)
    _require(config.fault_injection.fsync_delay_ms >= 0, "fault_injection.fsync_delay_ms",
             "must not be negative")
    return config


def _coerce(name: str, want: Any, value: Any) -> Any:
    """Type-check one TOML value against its field type (bool is not an int here)."""
    if want is bool or want == "bool":
        _require(isinstance(value, bool), name, f"must be true or false, got {value!r}")
    elif want is int or want == "int":
        _require(isinstance(value, int) and not isinstance(value, bool), name,
                 f"must be an integer, got {value!r}")
    elif want is str or want == "str":
        _require(isinstance(value, str), name, f"must be a string, got {value!r}")
    else:  # tuple[str, ...]
        _require(isinstance(value, list) and all(isinstance(v, str) for v in value), name,
                 f"must be a list of strings, got {value!r}")
        value = tuple(value)
    return value


def from_dict(document: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from parsed TOML; unknown keys are errors."""
    sections: dict[str, Any] = {}
    for section_name, section_value in document.items():
        section_type = _SECTION_TYPES.get(section_name)
        if section_type is None:
            raise ConfigError(f"unknown section [{section_name}] (known: {', '.join(_SECTION_TYPES)})")
        if not isinstance(section_value, dict):
            raise ConfigError(f"{section_name} must be a table")
        known = {f.name: f.type for f in dataclasses.fields(section_type) if f.name != "limits"}
        if section_type is RPCSection:
            known.update((name, "int") for name in RPC_LIMITS)
        values = {}
        for key, value in section_value.items():
            name = f"{section_name}.{key}"
            if key not in known:
                raise ConfigError(f"unknown setting {name}")
            values[key] = _coerce(name, known[key], value)
        sections[section_name] = (_rpc_section(values) if section_type is RPCSection
                                  else section_type(**values))
    return validate(Config(**sections))


def _rpc_section(values: dict[str, Any]) -> RPCSection:
    """``[rpc]``'s flat keys: the section's own, and the limits."""
    limits = {key: values.pop(key) for key in list(values) if key in RPC_LIMITS}
    try:
        return RPCSection(**values, limits=Limits(**limits))
    except ValueError as exc:
        raise ConfigError(f"rpc.{exc}") from None


def to_dict(config: Config) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for section in dataclasses.fields(config):
        if section.name == "fault_injection" and config.fault_injection == FaultInjectionSection():
            continue  # off: not in anyone's config.toml
        values = dataclasses.asdict(getattr(config, section.name))
        if section.name == "rpc":
            limits = values.pop("limits")
            values.update((name, limits[name]) for name in RPC_LIMITS)
        document[section.name] = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
    return document


def load_config(path: Path) -> Config:
    path = Path(path)
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist (run `clearchain init`)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    try:
        return from_dict(document)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def save_config(config: Config, path: Path) -> None:
    """Write the config (validated first) atomically."""
    validate(config)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(tomli_w.dumps(to_dict(config)).encode())
    temporary.replace(path)


def replace(config: Config, **changes: dict[str, Any]) -> Config:
    """A copy with some sections changed: ``replace(cfg, p2p={"listen_address": ...})``."""
    sections = {}
    for name, values in changes.items():
        if name == "rpc":  # limits by their names, as in config.toml
            values = dict(values)
            limits = {key: values.pop(key) for key in list(values) if key in RPC_LIMITS}
            if limits:
                try:
                    values["limits"] = dataclasses.replace(config.rpc.limits, **limits)
                except ValueError as exc:
                    raise ConfigError(f"rpc.{exc}") from None
        sections[name] = dataclasses.replace(getattr(config, name), **values)
    return validate(dataclasses.replace(config, **sections))
