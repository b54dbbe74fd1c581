"""Who holds the RPC server's connection slots, and whom a full pool evicts for a newcomer.

Three pools, each bounded by its own limit (``rpc/limits.py``): plain HTTP connections, WebSocket
sessions, and ``broadcast_tx_commit`` calls waiting for their block. A connection is in one of
them at a time: an upgrade moves it from HTTP to WebSocket, a commit wait moves it out of HTTP
for as long as it waits, so neither can starve plain requests.

Every connection has a :class:`Slot` saying what it is doing (:class:`Phase`) and since when, and
one cancel scope whose deadline the server keeps at what that phase allows: the header deadline
and minimum rate of the request being read (every request, not only the first), the request
deadline while it is answered, the idle timeout between requests. Evicting a connection is
cancelling that scope; its slot is given to the newcomer at once.

When a pool is full, a newcomer evicts the connection that costs a slot and gives least, in this
order (the address holding the most slots first, on every rank):

HTTP       1. a request arriving below ``min_request_rate``, or an answer the client is not reading
           2. a keep-alive idle between requests (or a fresh connection that sent nothing),
              longest idle first
           3. only if nothing else: one idle or reading for less than ``JUDGE_AFTER_S``, oldest
              first (attackers reconnecting faster than that keep every slot young)
WebSocket  1. a session whose send is blocked or whose subscription overflowed
           2. a session with a ping unanswered, oldest ping first (a client that does not read
              never answers; one that reads answers within a round trip)

A connection with bytes the server has not read yet is never evicted (a request waits there for
a busy event loop; a WebSocket's pong may be among them). Connections answering are never evicted: if every slot is busy answering, the
newcomer is refused (HTTP 503, -32002). Nothing here relies on addresses alone: on loopback all
clients share one, and the ranks above still find the abusers.

A tx the node refuses for load (``rpc.errors.overloaded``: mempool full, node behind) is the
other 503: :func:`refusal_status` turns the hint of a single refused call into the status and a
``Retry-After`` header, so HTTP clients and proxies back off without reading the body.
"""

from __future__ import annotations

import array
import enum
import fcntl
import math
import termios
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import trio

from rpc import errors
from rpc.limits import Limits

JUDGE_AFTER_S = 0.1
"""A connection is judged idle or slow only after this long in its phase: an honest request's
bytes arrive within a round trip, and a judgement on less would evict newcomers mid-packet."""
RATE_GRACE_S = 2.0
"""Seconds a request may take before ``min_request_rate`` closes it (slow starts, small heads)."""
STALLED_SEND_S = 1.0
"""A send blocked this long means the client is not reading: its connection may be evicted."""


class Phase(enum.Enum):
    IDLE = "idle"  # between requests, or a fresh connection before its first byte
    READING = "reading"  # a request's head or body arriving
    ANSWERING = "answering"  # the request is being answered (or its answer written)
    WAITING = "waiting"  # a broadcast_tx_commit waiting for its block (the waiter pool)
    WEBSOCKET = "websocket"


def unread_bytes(fileno: int) -> int:
    """Bytes the kernel holds for us on this socket, not read yet (FIONREAD)."""
    if fileno < 0:
        return 0
    count = array.array("i", [0])
    try:
        fcntl.ioctl(fileno, termios.FIONREAD, count)
    except OSError:
        return 0
    return count[0]


class Pool(enum.Enum):
    HTTP = "http"
    WEBSOCKET = "websocket"


@dataclass(eq=False)
class Slot:
    """One accepted connection: its pool, what it is doing, and the scope that ends it."""

    address: str
    scope: trio.CancelScope
    since: float
    pool: Pool = Pool.HTTP
    phase: Phase = Phase.IDLE
    requests: int = 0
    request_start: float = 0.0
    received: int = 0
    """Bytes of the request being read."""
    head_done: bool = False
    sending_since: float | None = None
    """When the write in progress started (None: not writing)."""
    ping_sent: float | None = None
    """WebSocket: when the unanswered ping went out (None: none outstanding)."""
    overflowed: bool = False
    """WebSocket: a subscription fell behind; the session is closing."""
    fileno: int = -1
    """The socket, to look for bytes not read yet (-1: none to look at)."""
    evicted: bool = False
    close_after_answer: bool = False
    """Came back from a commit wait to a full HTTP pool: close once answered."""


@dataclass
class Admission:
    """The three pools and the eviction rule; the server calls it, it does no I/O."""

    limits: Limits
    clock: Callable[[], float] = trio.current_time
    http: set[Slot] = field(default_factory=set)
    websockets: set[Slot] = field(default_factory=set)
    waiters: int = 0
    per_address: Counter[str] = field(default_factory=Counter)
    evictions: Counter[str] = field(default_factory=Counter)
    """Evictions by reason (``slow``, ``idle``, ``unread`` ...), for tests and logs."""
    refused: Counter[str] = field(default_factory=Counter)

    @property
    def open_connections(self) -> int:
        return len(self.http) + len(self.websockets)

    # --- the HTTP pool ------------------------------------------------------------------------

    def admit(self, address: str, scope: trio.CancelScope, fileno: int = -1) -> Slot | None:
        """A slot for a new connection, evicting one if the pool is full; None: refuse it."""
        cap = self.limits.max_connections_per_address
        if cap and self.per_address[address] >= cap:
            if not self._evict(self.http, self._http_rank, only=address):
                self.refused["address"] += 1
                return None
        if len(self.http) >= self.limits.max_open_connections:
            if not self._evict(self.http, self._http_rank):
                self.refused["http"] += 1
                return None
        slot = Slot(address, scope, self.clock(), fileno=fileno)
        self.http.add(slot)
        self.per_address[address] += 1
        self.set_deadline(slot)
        return slot

    def release(self, slot: Slot) -> None:
        """The connection has ended (or was evicted): free its slot once."""
        pool = self.http if slot.pool is Pool.HTTP else self.websockets
        if slot in pool:
            pool.discard(slot)
            self.per_address[slot.address] -= 1
            if self.per_address[slot.address] <= 0:
                del self.per_address[slot.address]

    def _http_rank(self, slot: Slot, now: float) -> tuple[int, float] | None:
        """None for a connection that must not go; bytes waiting to be read mean a request is
        there and the server has not got to it yet (a busy loop), not an idle or slow client."""
        age = now - slot.since
        if slot.phase is Phase.READING:
            if age < JUDGE_AFTER_S:  # too young to judge: only if nothing else can go
                return (2, -age)
            rate = slot.received / age
            if rate < self.limits.min_request_rate:
                return (0, rate)
        if slot.sending_since is not None and now - slot.sending_since >= STALLED_SEND_S:
            return (0, 0.0)
        if slot.phase is Phase.IDLE:
            # longest idle first; one younger than a round trip only when nothing else can go
            # (attackers reconnecting faster than that), its unread bytes checked by the caller
            return (1 if age >= JUDGE_AFTER_S else 2, -age)
        return None

    # --- phases and deadlines -----------------------------------------------------------------

    def enter(self, slot: Slot, phase: Phase) -> None:
        slot.phase, slot.since = phase, self.clock()
        if phase is Phase.READING:
            slot.received, slot.head_done = 0, False
            slot.requests += 1
            slot.request_start = slot.since
        self.set_deadline(slot)

    def received(self, slot: Slot, size: int, head_done: bool) -> None:
        """Bytes of the current request arrived: the rate deadline moves on."""
        slot.received += size
        slot.head_done = head_done
        self.set_deadline(slot)

    def set_deadline(self, slot: Slot) -> None:
        """The connection's deadline for what it is doing now."""
        limits, start = self.limits, slot.since
        if slot.phase is Phase.IDLE:
            timeout = limits.header_timeout_ms if slot.requests == 0 else limits.idle_timeout_ms
            deadline = start + timeout / 1000
        elif slot.phase is Phase.READING:
            deadline = min(start + limits.request_timeout_ms / 1000,
                           start + RATE_GRACE_S + slot.received / limits.min_request_rate)
            if not slot.head_done:
                deadline = min(deadline, start + limits.header_timeout_ms / 1000)
        elif slot.phase is Phase.WEBSOCKET:
            deadline = math.inf  # the session pings and times out on its own
        else:  # answering or waiting: the request deadline, from its first byte
            deadline = slot.request_start + limits.request_timeout_ms / 1000
        slot.scope.deadline = deadline

    def sending(self, slot: Slot, busy: bool) -> None:
        slot.sending_since = self.clock() if busy else None

    # --- WebSockets ---------------------------------------------------------------------------

    def upgrade(self, slot: Slot) -> bool:
        """Move an HTTP connection to the WebSocket pool (evicting if full); False: refuse."""
        if len(self.websockets) >= self.limits.max_websocket_clients:
            if not self._evict(self.websockets, self._websocket_rank):
                self.refused["websocket"] += 1
                return False
        self.http.discard(slot)
        self.websockets.add(slot)
        slot.pool = Pool.WEBSOCKET
        self.enter(slot, Phase.WEBSOCKET)
        return True

    def _websocket_rank(self, slot: Slot, now: float) -> tuple[int, float] | None:
        if slot.overflowed or (slot.sending_since is not None and now - slot.sending_since >= STALLED_SEND_S):
            return (0, 0.0)
        if slot.ping_sent is not None and now - slot.ping_sent >= JUDGE_AFTER_S:
            return (1, slot.ping_sent)
        return None

    # --- broadcast_tx_commit waiters ----------------------------------------------------------

    @contextmanager
    def waiting(self, slot: Slot | None) -> Iterator[None]:
        """Hold a waiter slot while a broadcast_tx_commit waits; its connection leaves the HTTP
        pool meanwhile. Raises LIMIT_EXCEEDED (before any work) when the waiter pool is full."""
        limit = self.limits.max_commit_waiters
        if self.waiters >= limit:
            self.refused["commit"] += 1
            raise errors.RPCError(
                errors.LIMIT_EXCEEDED, f"{limit} broadcast_tx_commit calls are already waiting; "
                "use broadcast_tx_sync and poll tx by hash")
        self.waiters += 1
        moved = slot is not None and slot in self.http
        if moved:
            assert slot is not None
            self.http.discard(slot)
            slot.phase = Phase.WAITING
        try:
            yield
        finally:
            self.waiters -= 1
            if moved:
                assert slot is not None
                slot.phase = Phase.ANSWERING
                slot.close_after_answer = len(self.http) >= self.limits.max_open_connections
                self.http.add(slot)

    # --- eviction -----------------------------------------------------------------------------

    def _evict(self, pool: set[Slot], rank: Callable[[Slot, float], tuple[int, float] | None],
               only: str | None = None) -> bool:
        now = self.clock()
        candidates = []
        for slot in pool:
            if only is not None and slot.address != only:
                continue
            found = rank(slot, now)
            if found is not None:
                candidates.append(((-self.per_address[slot.address], found[0], found[1]), slot))
        candidates.sort(key=lambda item: item[0])
        best = next((item for item in candidates if unread_bytes(item[1].fileno) == 0), None)
        if best is None:
            return False
        victim = best[1]
        self.evictions[_reason(victim)] += 1
        victim.evicted = True
        victim.scope.cancel()
        self.release(victim)
        return True


def refusal_status(retry_after_ms: int, reply: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    """HTTP status and extra headers of a reply: 503 with ``Retry-After`` (whole seconds, at
    least 1) when a single request was refused for load with ``retry_after_ms``, else 200.
    A batch stays 200: its other answers are good, each refusal carries its hint in ``data``."""
    if retry_after_ms <= 0 or reply[:1] != b"{":
        return 200, []
    return 503, [(b"retry-after", str(max(1, math.ceil(retry_after_ms / 1000))).encode())]


def _reason(slot: Slot) -> str:
    if slot.pool is Pool.WEBSOCKET:
        return "unread websocket"
    if slot.phase is Phase.READING:
        return "slow request"
    if slot.phase is Phase.IDLE:
        return "idle"
    return "unread answer"
