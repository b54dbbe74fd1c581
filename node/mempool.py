"""The mempool: txs that passed ``check_tx`` and wait for a block, ordered by fee then arrival.

- Every tx goes through the application's ``check_tx`` against the latest committed state. The
  application caches signature verdicts by tx hash, so the signature checked here is not verified
  again when the block executes (one verify per signature per node: docs/architecture.md).
- A bounded LRU cache of recently seen hashes (pending or committed) drops duplicates before any
  work; a tx that fails its check leaves the cache, so it can be sent again once valid.
- Limits on count and bytes; when full, a tx with a strictly higher fee evicts the cheapest,
  newest ones, otherwise it is refused (never silently), and refused before its signatures are
  checked when its fee alone shows it could evict nothing: past capacity, admitting txs that
  only wait would take the CPU that executes blocks.
- ``reap`` takes the highest fees first, earliest arrival among equal fees, within a block's
  byte and count limits; ``update`` removes committed txs, and ``recheck`` re-runs ``check_tx``
  on what is left (a tx may have become invalid: spent balance, expiry, replay).
- New txs are queued for gossip; :mod:`node.txgossip` takes them in batches
  (:meth:`take_gossip`), pushes the ones clients sent and announces by hash the ones peers
  sent, and the p2p layer packs them into few frames.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import trio
import trio.lowlevel

from primitives.hashing import sha256
from node.config import MempoolSection

log = logging.getLogger("clearchain.mempool")

CODESPACE = "mempool"
CODE_MEMPOOL_FULL = 100
CODE_IN_MEMPOOL = 101
CODE_TX_TOO_LARGE = 102
RECHECK_YIELD_EVERY = 200


class CheckResult(Protocol):
    code: int
    log: str
    priority: int


class CheckTxApp(Protocol):
    def check_tx(self, tx_bytes: bytes) -> CheckResult: ...

    def fee_priority(self, tx_bytes: bytes) -> int | None:
        """The priority ``check_tx`` would give, from the bytes alone (no signature checked);
        None if they do not decode. A full mempool refuses a tx that could not evict anything
        on this alone, before paying for its signatures."""
        ...


@dataclass(frozen=True)
class MempoolResult:
    """The mempool's answer to a submitted tx (the app's verdict, or the mempool's own refusal)."""

    code: int
    log: str = ""
    codespace: str = ""
    priority: int = 0
    tx_hash: bytes = b""
    app_result: CheckResult | None = None

    @property
    def ok(self) -> bool:
        return self.code == 0


class GossipItem(NamedTuple):
    tx: bytes
    hash: bytes
    holders: frozenset[str]
    relayed: bool


@dataclass
class _Entry:
    tx: bytes
    hash: bytes
    priority: int
    seq: int
    senders: set[str] = field(default_factory=set)
    """Peers known to hold this tx: they sent or announced it, or we sent it to them. Gossip
    leaves them out."""
    relayed: bool = False
    """Admitted from a peer (gossip announces it by hash), not from a client (pushed whole)."""
    account: bytes = b""
    """The signing account, as check_tx reported it (targets the recheck)."""
    admitted_at: float = field(default_factory=time.monotonic)


class Mempool:
    def __init__(self, app: CheckTxApp, config: MempoolSection) -> None:
        self.app = app
        self.config = config
        self._entries: dict[bytes, _Entry] = {}  # insertion order is arrival order
        self._bytes = 0
        self._seq = 0
        self._cache: OrderedDict[bytes, None] = OrderedDict()
        self._evict_heap: list[tuple[int, int, bytes]] = []  # (priority, -seq, hash), lazy
        self._gossip: list[bytes] = []  # hashes of new txs not yet gossiped
        self._gossip_ready = trio.Event()
        self._available = trio.Event()  # set when a tx is added

    # --- queries ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._entries

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def txs(self, limit: int | None = None) -> list[bytes]:
        """Pending txs in reap order."""
        ordered = self._ordered()
        return [e.tx for e in (ordered if limit is None else ordered[:limit])]

    def _ordered(self) -> list[_Entry]:
        # dict order is arrival order and sorted() is stable: fee desc, then arrival
        return sorted(self._entries.values(), key=lambda e: -e.priority)

    # --- admission ----------------------------------------------------------------------------

    def check_tx(self, tx: bytes, *, peer: str | None = None) -> MempoolResult:
        """Admit a tx from a client (``peer`` None) or a peer; the answer says why not."""
        if len(tx) > self.config.max_tx_bytes:
            return MempoolResult(CODE_TX_TOO_LARGE,
                                 f"tx of {len(tx)} bytes exceeds mempool.max_tx_bytes "
                                 f"({self.config.max_tx_bytes})", CODESPACE)
        tx_hash = sha256(tx)
        known = self._known(tx_hash, peer)
        if isinstance(known, _Entry):
            return MempoolResult(CODE_IN_MEMPOOL, "tx is already in the mempool", CODESPACE,
                                 known.priority, tx_hash)
        if known:
            return MempoolResult(CODE_IN_MEMPOOL, "tx was seen recently (pending or committed)",
                                 CODESPACE, 0, tx_hash)
        full = self.full_for(tx)
        if full is not None:
            return MempoolResult(CODE_MEMPOOL_FULL, full, CODESPACE, 0, tx_hash)
        result = self.app.check_tx(tx)
        if result.code != 0:
            return MempoolResult(int(result.code), result.log, "clearing", 0, tx_hash, result)
        if not self._make_room(len(tx), result.priority):
            return MempoolResult(CODE_MEMPOOL_FULL,
                                 f"mempool is full ({len(self._entries)} txs, {self._bytes} bytes) "
                                 f"and the fee {result.priority} does not beat the cheapest",
                                 CODESPACE, result.priority, tx_hash)
        self._add(tx, tx_hash, result.priority, peer, bytes(getattr(result, "sender", b"") or b""))
        return MempoolResult(0, "", "", result.priority, tx_hash, result)

    def full_for(self, tx: bytes) -> str | None:
        """Why the pool cannot take ``tx`` whatever its checks say, or None: it is full (count
        or bytes) and the fee the bytes declare (no signature checked) beats no pending tx."""
        if self._fits(len(tx)):
            return None
        priority = self.app.fee_priority(tx)
        cheapest = self._cheapest_priority()
        if priority is None or cheapest is None or priority > cheapest:
            return None
        return (f"mempool is full ({len(self._entries)} txs, {self._bytes} bytes) "
                f"and the fee {priority} does not beat the cheapest")

    def get(self, tx_hash: bytes) -> bytes | None:
        """The pending tx with this hash (compact proposals name txs by hash)."""
        entry = self._entries.get(tx_hash)
        return None if entry is None else entry.tx

    def age(self, tx_hash: bytes) -> float | None:
        """Seconds since the pending tx with this hash was admitted (None: not pending)."""
        entry = self._entries.get(tx_hash)
        return None if entry is None else time.monotonic() - entry.admitted_at

    def note_known(self, tx: bytes, peer: str) -> bool:
        """True (and ``peer`` remembered as a sender) if ``tx`` is pending or was seen recently:
        ``check_tx`` would answer "already in the mempool" without looking further."""
        return self._known(sha256(tx), peer) is not False

    def _known(self, tx_hash: bytes, peer: str | None) -> _Entry | bool:
        """The pending entry (``peer`` noted as a sender), True if seen recently, else False."""
        entry = self._entries.get(tx_hash)
        if entry is not None:
            if peer is not None:
                entry.senders.add(peer)
            return entry
        if tx_hash in self._cache:
            self._cache.move_to_end(tx_hash)
            return True
        return False

    def _add(self, tx: bytes, tx_hash: bytes, priority: int, peer: str | None, account: bytes) -> None:
        self._seq += 1
        entry = _Entry(tx, tx_hash, priority, self._seq, {peer} if peer else set(), peer is not None, account)
        self._entries[tx_hash] = entry
        self._bytes += len(tx)
        heapq.heappush(self._evict_heap, (priority, -entry.seq, tx_hash))
        self._remember(tx_hash)
        self._gossip.append(tx_hash)
        self._gossip_ready.set()
        self._available.set()

    def _remember(self, tx_hash: bytes) -> None:
        self._cache[tx_hash] = None
        self._cache.move_to_end(tx_hash)
        while len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)

    def _fits(self, size: int) -> bool:
        return (len(self._entries) < self.config.max_txs
                and self._bytes + size <= self.config.max_bytes)

    def _cheapest_priority(self) -> int | None:
        """The lowest priority of a pending tx (None: empty)."""
        heap = self._evict_heap
        while heap and heap[0][2] not in self._entries:
            heapq.heappop(heap)  # stale
        return heap[0][0] if heap else None

    def _make_room(self, size: int, priority: int) -> bool:
        """Evict strictly cheaper txs (cheapest, then newest first) until ``size`` fits."""
        if self._fits(size):
            return True
        victims: list[_Entry] = []
        freed_bytes = 0
        heap = self._evict_heap
        while heap:
            low_priority, _neg_seq, tx_hash = heap[0]
            entry = self._entries.get(tx_hash)
            if entry is None or entry in victims:
                heapq.heappop(heap)  # stale
                continue
            if low_priority >= priority:
                break
            heapq.heappop(heap)
            victims.append(entry)
            freed_bytes += len(entry.tx)
            if (len(self._entries) - len(victims) < self.config.max_txs
                    and self._bytes - freed_bytes + size <= self.config.max_bytes):
                for victim in victims:
                    self._remove(victim.hash, forget=True)
                log.debug("evicted %d cheaper txs for a tx paying %d", len(victims), priority)
                return True
        for victim in victims:  # not enough to evict: put them back
            heapq.heappush(heap, (victim.priority, -victim.seq, victim.hash))
        return False

    def _remove(self, tx_hash: bytes, *, forget: bool) -> None:
        entry = self._entries.pop(tx_hash, None)
        if entry is None:
            return
        self._bytes -= len(entry.tx)
        if forget:
            self._cache.pop(tx_hash, None)

    # --- blocks -------------------------------------------------------------------------------

    def reap(self, max_bytes: int, max_txs: int) -> list[bytes]:
        """Highest fee first, then arrival, as many as fit in ``max_bytes`` and ``max_txs``.

        A tx too big for the remaining room is skipped, and smaller ones behind it still fit.
        """
        chosen: list[bytes] = []
        room = max_bytes
        for entry in self._ordered():
            if len(chosen) >= max_txs:
                break
            if len(entry.tx) <= room:
                chosen.append(entry.tx)
                room -= len(entry.tx)
        return chosen

    def update(self, committed: Iterable[bytes]) -> int:
        """Drop txs committed in a block (given as raw txs); returns how many were pending."""
        removed = 0
        for tx in committed:
            tx_hash = sha256(tx)
            if tx_hash in self._entries:
                self._remove(tx_hash, forget=False)
                removed += 1
            self._remember(tx_hash)  # committed: a late gossip copy is dropped unchecked
        if len(self._evict_heap) > 2 * len(self._entries) + 1024:
            self._evict_heap = [(e.priority, -e.seq, h) for h, e in self._entries.items()]
            heapq.heapify(self._evict_heap)
        return removed

    async def recheck(self, accounts: Collection[bytes] | None = None, *,
                      pause: Callable[[], Awaitable[None]] = trio.lowlevel.checkpoint) -> int:
        """Re-run ``check_tx`` on pending txs against the new state; drop the failures.

        ``accounts``: only txs signed by these accounts (those a block touched: their balance
        or orders may have changed); None rechecks everything (expiry, fee changes). Yields to
        the event loop every few hundred txs so a large mempool never stalls the node, through
        ``pause`` (the node's ``ExecutionGate.idle``: no check runs while a block executes).
        """
        if not self.config.recheck:
            return 0
        await pause()
        dropped = 0
        for index, entry in enumerate(list(self._entries.values())):
            if entry.hash not in self._entries:
                continue
            if accounts is not None and entry.account and entry.account not in accounts:
                continue
            result = self.app.check_tx(entry.tx)
            if result.code != 0:
                self._remove(entry.hash, forget=True)
                dropped += 1
                log.debug("recheck dropped %s: %s", entry.hash.hex()[:16], result.log)
            if index % RECHECK_YIELD_EVERY == RECHECK_YIELD_EVERY - 1:
                await pause()
        return dropped

    async def wait_for_txs(self) -> None:
        """Return once the mempool holds a tx (at once if it does)."""
        while not self._entries:
            if self._available.is_set():
                self._available = trio.Event()
            await self._available.wait()

    # --- gossip -------------------------------------------------------------------------------

    async def wait_gossip(self) -> None:
        await self._gossip_ready.wait()

    def take_gossip(self) -> list[GossipItem]:
        """New txs since the last call that are still pending, each with the peers known to
        hold it (when the batch is taken) and whether a peer sent it."""
        batch, self._gossip = self._gossip, []
        self._gossip_ready = trio.Event()
        entries = (self._entries.get(tx_hash) for tx_hash in batch)
        return [GossipItem(e.tx, e.hash, frozenset(e.senders), e.relayed) for e in entries if e is not None]

    def note_known_hash(self, tx_hash: bytes, peer: str) -> bool:
        """Like :meth:`note_known` for an announced hash: True (``peer`` remembered as a holder)
        if the tx is pending or was seen recently."""
        return self._known(tx_hash, peer) is not False

    def hand_over(self, tx_hash: bytes, peer: str) -> bytes | None:
        """The pending tx for a peer that asked for it, once: None if it is not pending or the
        peer holds it already (asked before, sent it, or announced it)."""
        entry = self._entries.get(tx_hash)
        if entry is None or peer in entry.senders:
            return None
        entry.senders.add(peer)
        return entry.tx

    def senders(self, tx_hash: bytes) -> set[str]:
        entry = self._entries.get(tx_hash)
        return set(entry.senders) if entry else set()
