"""The RPC server's limits: one definition, read from ``config.toml`` ``[rpc]``, documented from here.

Every field carries the reason for its value and, where CometBFT has a setting for the same thing,
that setting and its default, so ``rpc/README.md``'s table (:func:`limits_table`, checked by
``tests/rpc/test_limits.py``) cannot drift from what the node runs. Operators raise or lower them in
``[rpc]`` under the same names (``node/config.py`` reads every field but ``max_tx_bytes``, which
is ``mempool.max_tx_bytes``).

Where CometBFT is weak (its RPC is routinely put behind a reverse proxy for exactly this): one
``max_open_connections`` shared by plain requests, WebSockets and ``broadcast_tx_commit`` waiters,
no minimum transfer rate, and a full server refuses newcomers. Here the three have their own
pools, every request on a connection has a header deadline and a minimum rate, and a full pool
first evicts the connections that cost a slot and give least (``rpc/admission.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def _limit(default: int, why: str, cometbft: str = "", unit: str = "") -> Any:
    return field(default=default, metadata={"why": why, "cometbft": cometbft, "unit": unit})


@dataclass(frozen=True)
class Limits:
    """Server-side bounds; each one, when hit, gives the client a clear LIMIT_EXCEEDED (-32002),
    413 or 503, or closes only the offending connection."""

    max_open_connections: int = _limit(
        200, "plain HTTP connections (idle keep-alives included); when full, a newcomer evicts the "
        "slowest request below the minimum rate, else the longest-idle keep-alive, and is refused "
        "(503) only if every slot is busy answering", "max_open_connections = 900 (shared with "
        "WebSockets; a full server refuses)")
    max_websocket_clients: int = _limit(
        100, "WebSocket sessions, a pool of their own (an upgrade leaves the HTTP pool); when full "
        "a newcomer evicts a session that is not reading (a ping unanswered, a send blocked)",
        "max_subscription_clients = 100")
    max_subscriptions_per_client: int = _limit(
        10, "each subscription filters every published event and holds a queue",
        "max_subscriptions_per_client = 5")
    subscriber_queue: int = _limit(
        256, "events queued per subscription; a subscriber that falls this far behind is told "
        "(-32002) and disconnected, publishing never waits", "experimental_subscription_buffer_size = 200")
    max_commit_waiters: int = _limit(
        100, "broadcast_tx_commit calls waiting for their block, a pool of their own (a waiting "
        "connection leaves the HTTP pool); past it the call fails at once (-32002): use "
        "broadcast_tx_sync and poll tx", "none: waiters count against max_subscription_clients")
    timeout_broadcast_tx_commit_ms: int = _limit(
        10_000, "how long broadcast_tx_commit waits; the timeout error carries the tx hash",
        "timeout_broadcast_tx_commit = 10s", "ms")
    max_connections_per_address: int = _limit(
        0, "0 = no cap: behind a proxy, and on loopback, every client has the same address; "
        "eviction already takes from the address holding the most slots first",
        "none")
    max_body_bytes: int = _limit(
        1_000_000, "a request body or WebSocket message; bigger is refused with 413 unread",
        "max_body_bytes = 1000000", "bytes")
    max_header_bytes: int = _limit(
        16 * 1024, "a request head; JSON-RPC heads are a few hundred bytes",
        "max_header_bytes = 1048576", "bytes")
    max_batch_requests: int = _limit(
        20, "requests in one batch, answered one after another on one connection",
        "max_request_batch_size = 10")
    max_tx_bytes: int = _limit(
        64 * 1024, "a tx in broadcast_*/check_tx; set by mempool.max_tx_bytes, not in [rpc]",
        "max_tx_bytes = 1048576 (mempool)", "bytes")
    header_timeout_ms: int = _limit(
        10_000, "from the first byte of every request (not only the first on a connection) to its "
        "last header; a fresh connection gets it to start", "read_timeout = 10s (whole request)",
        "ms")
    min_request_rate: int = _limit(
        1_000, "bytes/s a request (head and body) must keep up after a 2 s grace, on every "
        "request; a dribbler below it is closed, and is the first to go when the pool is full",
        "none", "bytes/s")
    request_timeout_ms: int = _limit(
        30_000, "from the first byte of a request to its answer written (broadcast_tx_commit "
        "waits inside it)", "none (read and write timeouts only)", "ms")
    idle_timeout_ms: int = _limit(
        30_000, "a keep-alive connection between requests; when the pool is full the longest idle "
        "is evicted (clients reconnect, rpc.client retries once)", "none (Go: the read timeout, 10s)", "ms")
    send_timeout_ms: int = _limit(
        10_000, "one write to a client that does not read", "write_timeout = 10s", "ms")
    websocket_ping_interval_ms: int = _limit(
        20_000, "the server pings every WebSocket this often (and once on connect): a client that "
        "reads answers, one that does not is found out", "ping period 27s (fixed)", "ms")
    websocket_pong_timeout_ms: int = _limit(
        10_000, "a ping unanswered this long closes the WebSocket", "read wait 30s (fixed)", "ms")
    max_blockchain_range: int = _limit(20, "block metas in one blockchain call", "20 (fixed)")
    max_per_page: int = _limit(100, "items per page (validators, liquidations, unconfirmed_txs)",
                               "100 (fixed)")

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            low = 0 if item.name == "max_connections_per_address" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{item.name} must be an integer of at least {low}, got {value!r}")

    def seconds(self, name: str) -> float:
        """A ``*_ms`` limit in seconds (what trio's deadlines take)."""
        return float(getattr(self, name)) / 1000.0


CONFIGURED = tuple(f.name for f in dataclasses.fields(Limits) if f.name != "max_tx_bytes")
"""The limits ``config.toml`` ``[rpc]`` sets (``max_tx_bytes`` comes from ``[mempool]``)."""


def limits_table() -> str:
    """The markdown table of rpc/README.md's Limits section, from the fields above."""
    rows = ["| `[rpc]` setting | default | why | CometBFT |", "| --- | --- | --- | --- |"]
    for item in dataclasses.fields(Limits):
        unit = item.metadata["unit"]
        default = f"{item.default:,}" + (f" {unit}" if unit else "")
        rows.append(f"| `{item.name}` | {default} | {item.metadata['why']} | "
                    f"{item.metadata['cometbft'] or '-'} |")
    return "\n".join(rows) + "\n"
