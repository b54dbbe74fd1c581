"""Load shedding at the edge: a client's tx the node cannot use now is refused before any work.

Past capacity a node that keeps admitting spends its CPU on signatures of txs that only wait,
and the blocks it should be executing and voting on come later and later until rounds time out
one after another (issue 17 measured 80 of 12,800 trades committed in 2 blocks). So
``broadcast_tx_*`` refuses, with JSON-RPC -32002 and ``data.retry_after_ms`` (HTTP 503 with
``Retry-After``), a client's tx when:

- the queue is standing: the txs of the last committed block waited longer than
  ``mempool.max_queue_ms`` in the mempool (their median; a CoDel-like signal: it measures the
  wait admitted txs get, whatever makes blocks slow), until a block's txs waited less; or no
  block has committed for that long while txs are pending (rounds failing: no block comes to
  report a wait, and admitting more would only starve the rounds further). The
  mempool's byte limit is several seconds of blocks, so without this a burst well past
  capacity was admitted whole, two signature checks per trade on every validator, and blocks
  starved long before the pool was full;
- the mempool is full (count or bytes) and the tx's declared fee beats no pending tx (read
  from its bytes, no signature checked: :meth:`node.mempool.Mempool.full_for`); a tx paying
  more still goes in and evicts the cheapest, as before;
- the node is behind: ``mempool.refuse_behind_blocks`` or more blocks below the height its
  peers report (:func:`reported_height`: the lower median, so one peer claiming a huge height
  cannot make a node refuse its clients); it cannot judge the tx against a state it has not
  reached, and check_tx would slow its catch-up. A node alone (no peer reports) is never behind.

The hint is when trying again makes sense: one block interval for a full pool (each block frees
room), the excess wait for a standing queue, the blocks to catch up times the interval when
behind, within ``[MIN_RETRY_MS, MAX_RETRY_MS]``. Txs from peers are not shed here: the
mempool's own limits answer them. Invalid txs keep their check_tx result codes (they are
answers, not load).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

MIN_RETRY_MS = 200
"""Shortest hint: sooner than this a retry finds the same state (a block takes longer)."""
MAX_RETRY_MS = 10_000
"""Longest hint: a client told to wait longer would rather go to another node."""
DEFAULT_BLOCK_MS = 1_000
"""Block interval assumed before the node has timed one (``timeout_commit``'s default)."""


class FullPool(Protocol):
    def full_for(self, tx: bytes) -> str | None: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class Refusal:
    """Why a client's tx was refused for load, and when to try again."""

    reason: str
    retry_after_ms: int


def clamp_retry_ms(ms: float) -> int:
    return int(min(MAX_RETRY_MS, max(MIN_RETRY_MS, ms)))


def reported_height(heights: Iterable[int], ours: int) -> int:
    """The height peers report, as this node believes it: the lower median of their reports
    (more than half must claim at least that much), or ``ours`` if that is higher."""
    reported = sorted(heights)
    if not reported:
        return ours
    return max(ours, reported[(len(reported) - 1) // 2])


class LoadShedder:
    """Decides, from what the node knows now, whether a client's tx is refused for load.

    Built from callables so it reads the live node (and tests can drive it): our height, the
    height peers report (:func:`reported_height`), the last block interval.
    """

    def __init__(self, mempool: FullPool, *, refuse_behind_blocks: int, max_queue_ms: int,
                 height: Callable[[], int], peers_height: Callable[[], int],
                 block_ms: Callable[[], float],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.mempool = mempool
        self.clock = clock
        self._last_commit = clock()
        self.refuse_behind_blocks = refuse_behind_blocks
        self.max_queue_ms = max_queue_ms
        self.standing_ms = 0.0
        """The median wait of the last block's txs if it exceeded ``max_queue_ms``, else 0."""
        self.height = height
        self.peers_height = peers_height
        self.block_ms = block_ms
        self.refused: dict[str, int] = {"full": 0, "behind": 0, "queue": 0}
        """Refusals by ground since start (logs, tests)."""

    def note_block(self, waits_s: Sequence[float]) -> None:
        """After a commit: how long each of the block's txs this node held waited in its
        mempool (seconds). A block of none (an empty queue) ends a standing queue."""
        self._last_commit = self.clock()
        if not waits_s or not self.max_queue_ms:
            self.standing_ms = 0.0
            return
        median_ms = statistics.median(waits_s) * 1000
        self.standing_ms = median_ms if median_ms > self.max_queue_ms else 0.0

    def _interval_ms(self) -> float:
        return self.block_ms() or DEFAULT_BLOCK_MS

    def refusal(self, tx: bytes) -> Refusal | None:
        """A :class:`Refusal` if ``tx`` must be refused for load, else None."""
        behind = self.blocks_behind()
        if behind is not None:
            self.refused["behind"] += 1
            return Refusal(behind, clamp_retry_ms(self._behind_by() * self._interval_ms()))
        queued_ms = self.queue_ms()
        if queued_ms:
            self.refused["queue"] += 1
            return Refusal(f"txs wait {queued_ms:.0f} ms in the mempool (more than "
                           f"mempool.max_queue_ms = {self.max_queue_ms}): the chain is past "
                           "its capacity", clamp_retry_ms(max(queued_ms - self.max_queue_ms,
                                                              self._interval_ms())))
        full = self.mempool.full_for(tx)
        if full is not None:
            self.refused["full"] += 1
            return Refusal(full, clamp_retry_ms(self._interval_ms()))
        return None

    def queue_ms(self) -> float:
        """How long txs wait, if past ``max_queue_ms`` (else 0): the last block's median wait,
        or the time since the last commit while txs are pending (nothing commits)."""
        if not self.max_queue_ms:
            return 0.0
        stalled_ms = (self.clock() - self._last_commit) * 1000
        if stalled_ms > self.max_queue_ms and len(self.mempool):
            return max(self.standing_ms, stalled_ms)
        return self.standing_ms

    def _behind_by(self) -> int:
        return max(1, self.peers_height() - self.height())

    def blocks_behind(self) -> str | None:
        """Why this node counts as behind, or None."""
        if self.refuse_behind_blocks <= 0:
            return None
        ahead = self.peers_height() - self.height()
        if ahead >= self.refuse_behind_blocks:
            return (f"node is {ahead} blocks behind its peers "
                    f"(mempool.refuse_behind_blocks = {self.refuse_behind_blocks})")
        return None
