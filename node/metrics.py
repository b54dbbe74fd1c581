"""Prometheus metrics of one node: ``clearchain_<subsystem>_<name>``, CometBFT's meanings.

Each :class:`NodeMetrics` owns its :class:`prometheus_client.CollectorRegistry` (never the
library's global one: in-process test nodes each have their own), and
:func:`serve_metrics` exposes it at ``http://<instrumentation.prometheus_listen_addr>/metrics``
with :func:`prometheus_client.generate_latest` behind a small h11 handler on trio.

Off the hot path: nothing is counted per tx except a mempool rejection. Per block,
:meth:`NodeMetrics.on_block` sets the consensus gauges, observes the block's timings and
counts the waterfall events of its ``end_block``. Everything that is a level rather than an
event (mempool size, peers, bytes per protocol, open WebSockets, the clearing gauges) is read
when Prometheus scrapes, by :class:`_ScrapeCollector`, so it costs nothing between scrapes.

Accounts near maintenance margin are counted from the liquidation index, not by a pass over
every account: the index's heap is walked from its root only through entries whose key is
within reach of the threshold (a key is a lower bound of the per-block drift an account can
take before it is liquidatable, so an account within 10% of its maintenance margin has a key
below ``drift + NEAR_KEY_PPM``), each candidate is checked exactly, and the walk stops after
:data:`NEAR_SCAN_LIMIT` candidates (``clearchain_clearing_accounts_near_margin_capped`` = 1).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import h11
import trio
import trio.lowlevel
import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from consensus.types import CommitFlag
from state.model import BREAKER_CAPPED, BREAKER_HALTED, BREAKER_NORMAL
from state.risk import risk_of

if TYPE_CHECKING:
    from node.chain import ExecutedBlock
    from state.app import ClearingApp

log = logging.getLogger("clearchain.metrics")

# No ``*_created`` series (the time each counter/histogram child was made): CometBFT's Go
# client exports none, dashboards do not read them, and they were ~half of a scrape's lines
# and of its time (7 -> 3 ms here). The switch is the library's own and process-wide.
prometheus_client.disable_created_metrics()

NAMESPACE = "clearchain"
NEAR_MARGIN = (11, 10)
"""An account is near maintenance margin when ``equity < 11/10 * MMR`` (and has positions)."""
NEAR_SCAN_LIMIT = 1_000
"""Most liquidation-index candidates checked exactly per scrape (~3 ms): a scrape stays cheap
however many accounts a crash brings near their margin; past it the gauge is a lower bound."""
BREAKER_STATES = {BREAKER_NORMAL: 0, BREAKER_CAPPED: 1, BREAKER_HALTED: 2}
WATERFALL_EVENTS = {
    "liquidation": "liquidations",
    "backstop": "backstop_fills",
    "insurance_cover": "insurance_draws",
    "deleverage": "adl_fills",
}
TIME_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
INTERVAL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
SIZE_BUCKETS = (1_000, 10_000, 100_000, 250_000, 500_000, 1_000_000, 2_000_000)


def near_margin_accounts(app: ClearingApp, limit: int = NEAR_SCAN_LIMIT) -> tuple[int, bool]:
    """(accounts with positions whose equity is below 110% of their MMR, capped?).

    Reads the liquidation index (state/waterfall.py) as a filter; see the module docstring.
    """
    index = app.liquidations
    ledger = app.ledger
    markets = ledger.markets
    if not markets or not index.heap:
        return 0, False
    # A key's headroom ``buffer * 1e6 / exposure`` is at most the buffer as a share of the
    # position's value at the index's scale (within 2x of the price); 10% of MMR is then at
    # most 2 * 0.1 * the largest maintenance margin fraction.
    reach = 2 * max(m.params.maintenance_margin_ppm for m in markets.values()) // 10 + 1
    threshold = index.drift + reach
    heap, keys = index.heap, index.keys
    near, checked, seen = 0, 0, set()
    pending = [0]
    num, den = NEAR_MARGIN
    while pending:
        i = pending.pop()
        if i >= len(heap) or heap[i][0] > threshold:
            continue  # a heap: every entry below is larger still
        pending.extend((2 * i + 1, 2 * i + 2))
        key, address = heap[i]
        if keys.get(address) != key or address in seen:
            continue  # stale heap entry (the index re-pushes on update)
        seen.add(address)
        if checked == limit:
            return near, True
        checked += 1
        account = ledger.accounts.get(address)
        if account is None or not account.positions:
            continue
        equity, _imr, mmr = risk_of(account, markets, ledger.pricing)
        if equity * den < mmr * num:
            near += 1
    return near, False


class _ScrapeCollector:
    """Gauges read at scrape time from the node's parts (the callables below)."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self.m = metrics

    def describe(self) -> Iterable[Any]:
        return []  # collected lazily; registering must not run collect()

    def collect(self) -> Iterable[Any]:
        m = self.m
        yield from m.collect_network()
        app = m.app
        if app is None:
            return
        ledger = app.ledger
        labels = ["market"]
        price = GaugeMetricFamily(f"{NAMESPACE}_clearing_oracle_price",
                                  "Oracle price applied to the market (price units)", labels=labels)
        oi = GaugeMetricFamily(f"{NAMESPACE}_clearing_open_interest",
                               "Open interest: sum of long sizes (size units)", labels=labels)
        imf = GaugeMetricFamily(f"{NAMESPACE}_clearing_initial_margin_ppm",
                                "Dynamic initial margin fraction (ppm)", labels=labels)
        rate = GaugeMetricFamily(f"{NAMESPACE}_clearing_funding_rate_ppm",
                                 "Last funding rate paid (ppm per interval)", labels=labels)
        breaker = GaugeMetricFamily(f"{NAMESPACE}_clearing_breaker_state",
                                    "Circuit breaker: 0 normal, 1 capped, 2 halted", labels=labels)
        active = GaugeMetricFamily(f"{NAMESPACE}_clearing_market_active",
                                   "1 if the market accepts risk-increasing trades (not halted, "
                                   "stale or capped)", labels=labels)
        age = GaugeMetricFamily(f"{NAMESPACE}_clearing_oracle_age_seconds",
                                "Block time minus the time of the price applied (staleness)",
                                labels=labels)
        for market_id in sorted(ledger.markets):
            market = ledger.markets[market_id]
            price.add_metric([market_id], market.price)
            oi.add_metric([market_id], market.open_interest)
            imf.add_metric([market_id], market.imf_ppm)
            rate.add_metric([market_id], market.last_rate_ppm)
            breaker.add_metric([market_id], BREAKER_STATES.get(market.breaker, 2))
            active.add_metric([market_id], int(app.market_status(market) == "active"))
            age.add_metric([market_id], max(0, app.time_ms - market.last_price_ms) / 1000)
        yield from (price, oi, imf, rate, breaker, active, age)
        g = ledger.globals
        yield GaugeMetricFamily(f"{NAMESPACE}_clearing_insurance_fund",
                                "Insurance fund (quote micro-units)", value=g.insurance)
        yield CounterMetricFamily(f"{NAMESPACE}_clearing_socialized_loss",
                                  "Loss written off since genesis (quote micro-units)",
                                  value=g.socialized_loss)
        near, capped = near_margin_accounts(app)
        yield GaugeMetricFamily(f"{NAMESPACE}_clearing_accounts_near_margin",
                                "Accounts with positions whose equity is below 110% of their "
                                "maintenance margin", value=near)
        yield GaugeMetricFamily(f"{NAMESPACE}_clearing_accounts_near_margin_capped",
                                "1 if the near-margin count stopped at its scan limit",
                                value=int(capped))


class NodeMetrics:
    """Every metric of one node, in its own registry.

    ``app``, ``peers``, ``mempool_size``, ``mempool_bytes``, ``open_websockets`` and
    ``network_counters`` are set by the node once its parts exist; until then they read as
    absent (or zero).
    """

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=False)
        self.app: ClearingApp | None = None
        self.network_counters: Callable[[], dict[str, dict[str, int]]] = dict
        n = NAMESPACE

        def gauge(name: str, doc: str, fn: Callable[[], float] | None = None, **kw: Any) -> Gauge:
            g = Gauge(name, doc, namespace=n, registry=registry, **kw)
            if fn is not None:
                g.set_function(fn)
            return g

        # consensus (CometBFT's consensus_* meanings)
        self.height = gauge("consensus_height", "Height of the latest committed block")
        self.rounds = gauge("consensus_rounds", "Round at which the latest block was committed")
        self.block_interval = Histogram("consensus_block_interval_seconds",
                                        "Time between this node's last two commits", namespace=n,
                                        registry=registry, buckets=INTERVAL_BUCKETS)
        self.block_size = gauge("consensus_block_size_bytes", "Size of the latest block")
        self.num_txs = gauge("consensus_num_txs", "Txs in the latest block")
        self.total_txs = Counter("consensus_total_txs", "Txs committed since this node started",
                                 namespace=n, registry=registry)
        self.validators = gauge("consensus_validators", "Validators that signed the latest block's "
                                "height (the set of its last commit)")
        self.validators_power = gauge("consensus_validators_power", "Their total voting power")
        self.missing = gauge("consensus_missing_validators",
                             "Validators absent from the latest block's last commit")
        self.missing_power = gauge("consensus_missing_validators_power",
                                   "Their voting power")
        self.byzantine = gauge("consensus_byzantine_validators",
                               "Validators with evidence in the latest block")
        self.byzantine_power = gauge("consensus_byzantine_validators_power",
                                     "Their voting power")
        # state (CometBFT's state_block_processing_time, and the store's writes)
        self.exec_time = Histogram("state_block_processing_time_seconds",
                                   "begin_block, every tx and end_block of one block", namespace=n,
                                   registry=registry, buckets=TIME_BUCKETS)
        self.commit_time = Histogram("state_block_commit_time_seconds",
                                     "State commit and the block's synced LevelDB write",
                                     namespace=n, registry=registry, buckets=TIME_BUCKETS)
        self.store_bytes = Histogram("state_store_bytes_written",
                                     "Bytes (keys and values) one block's state commit wrote",
                                     namespace=n, registry=registry, buckets=SIZE_BUCKETS)
        # mempool
        self.mempool_size = gauge("mempool_size", "Txs in the mempool")
        self.mempool_bytes = gauge("mempool_size_bytes", "Bytes of txs in the mempool")
        self.rejected = Counter("mempool_rejected_txs", "Txs refused by check_tx, by code",
                                ["code"], namespace=n, registry=registry)
        # p2p
        self.peers = gauge("p2p_peers", "Connected peers")
        # rpc
        self.rpc_requests = Counter("rpc_requests", "JSON-RPC calls answered, by method",
                                    ["method"], namespace=n, registry=registry)
        self.rpc_errors = Counter("rpc_errors", "JSON-RPC calls answered with an error",
                                  ["method"], namespace=n, registry=registry)
        self.rpc_latency = Histogram("rpc_request_duration_seconds", "Handler time, by method",
                                     ["method"], namespace=n, registry=registry,
                                     buckets=TIME_BUCKETS)
        self.open_websockets = gauge("rpc_open_websockets", "Open WebSocket connections")
        # clearing: counters of the waterfall's end_block events
        self.waterfall = {kind: Counter(f"clearing_{name}", f"'{kind}' events since start",
                                        namespace=n, registry=registry)
                          for kind, name in WATERFALL_EVENTS.items()}
        self.socialized_events = Counter("clearing_socialized_loss_events",
                                         "'socialized_loss' events since start",
                                         namespace=n, registry=registry)
        registry.register(_ScrapeCollector(self))
        self._last_commit = 0.0
        self._rpc_children: dict[str, tuple[Any, Any]] = {}

    # --- per block ---------------------------------------------------------------------------

    def on_block(self, executed: ExecutedBlock, *, round_: int, block_bytes: int,
                 last_validators: Any, validators_of: Callable[[int], Any]) -> None:
        """Everything one committed block tells (called once per block, after it is stored)."""
        block = executed.block
        now = time.monotonic()
        if self._last_commit:
            self.block_interval.observe(now - self._last_commit)
        self._last_commit = now
        self.height.set(block.height)
        self.rounds.set(round_)
        self.block_size.set(block_bytes)
        self.num_txs.set(len(block.txs))
        self.total_txs.inc(len(block.txs))
        self.exec_time.observe(executed.exec_s)
        self.commit_time.observe(executed.commit_s)
        if executed.bytes_written:
            self.store_bytes.observe(executed.bytes_written)
        last_commit = block.last_commit
        if last_commit is not None and last_commit.signatures and last_commit_valset(last_validators):
            vals = last_validators.validators
            absent = [v for v, sig in zip(vals, last_commit.signatures) if sig.flag == CommitFlag.ABSENT]
            self.validators.set(len(vals))
            self.validators_power.set(sum(v.voting_power for v in vals))
            self.missing.set(len(absent))
            self.missing_power.set(sum(v.voting_power for v in absent))
        byzantine, power = 0, 0
        for ev in block.evidence:
            valset = validators_of(ev.height)
            member = valset.get(ev.validator_address) if valset is not None else None
            byzantine += 1
            power += member.voting_power if member is not None else 0
        self.byzantine.set(byzantine)
        self.byzantine_power.set(power)
        for ev in executed.end.events:
            kind = ev.get("type")
            counter = self.waterfall.get(kind)
            if counter is not None:
                counter.inc()
            elif kind == "socialized_loss":
                self.socialized_events.inc()

    def on_rejected(self, code: int) -> None:
        self.rejected.labels(str(code)).inc()

    def on_rpc(self, method: str, seconds: float, error: bool) -> None:
        """Called once per answered call: the per-method children are looked up once and kept
        (``labels()`` takes the family's lock and builds a key each time: ~4x the update)."""
        children = self._rpc_children.get(method)
        if children is None:
            children = (self.rpc_requests.labels(method), self.rpc_latency.labels(method))
            self._rpc_children[method] = children
        children[0].inc()
        children[1].observe(seconds)
        if error:
            self.rpc_errors.labels(method).inc()

    # --- scrape time ------------------------------------------------------------------------

    def collect_network(self) -> Iterable[Any]:
        counters = self.network_counters()
        docs = {"bytes_sent": "Bytes written to peers, by protocol (frames)",
                "bytes_received": "Bytes read from peers, by protocol (frames' messages)",
                "dropped_messages": "Queued messages discarded when a peer went away or "
                                    "stalled, by protocol"}
        for name, doc in docs.items():
            family = CounterMetricFamily(f"{NAMESPACE}_p2p_{name}", doc, labels=["protocol"])
            for protocol, value in sorted(counters.get(name, {}).items()):
                family.add_metric([protocol], value)
            yield family

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def last_commit_valset(valset: Any) -> bool:
    return valset is not None and bool(getattr(valset, "validators", ()))


# --- the endpoint ------------------------------------------------------------------------------

MAX_REQUEST_BYTES = 16 * 1024
SCRAPE_TIMEOUT_S = 10.0


async def serve_metrics(metrics: NodeMetrics, host: str, port: int, *,
                        ready: Callable[[], Awaitable[None]] = trio.lowlevel.checkpoint,
                        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``GET /metrics`` until cancelled; reports the bound port through ``task_status``.
    ``ready`` is awaited right before each exposition (the node's ``ExecutionGate.idle``: a
    scrape reads the application between blocks, never during one)."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    log.info("Prometheus metrics on http://%s:%d/metrics", host, bound)
    task_status.started(bound)

    async def handle(stream: trio.SocketStream) -> None:
        try:
            with trio.move_on_after(SCRAPE_TIMEOUT_S):
                await _answer(stream, metrics, ready)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError, OSError):
            pass
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    await trio.serve_listeners(handle, listeners)


async def _answer(stream: trio.SocketStream, metrics: NodeMetrics,
                  ready: Callable[[], Awaitable[None]]) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)
    while True:  # one request per connection, as Prometheus makes them
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(4096)
            conn.receive_data(data)
            continue
        break
    if not isinstance(event, h11.Request):
        return
    if event.method != b"GET" or event.target.split(b"?")[0] not in (b"/metrics", b"/"):
        body, status, kind = b"not found: GET /metrics\n", 404, b"text/plain"
    else:
        await ready()
        body, status, kind = metrics.exposition(), 200, CONTENT_TYPE_LATEST.encode()
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers)))
    await stream.send_all(conn.send(h11.Data(data=body)))
    await stream.send_all(conn.send(h11.EndOfMessage()))

