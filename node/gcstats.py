"""Time the node spends in Python's cyclic garbage collector, for the operator's log.

A collection stops the event loop: consensus, gossip and RPC all wait. The node holds large
long-lived structures (accounts, the store's node cache, caches of decoded txs), so a full
collection can take long enough to matter; this makes it visible instead of a mystery pause.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field


@dataclass
class GCStats:
    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    seconds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    longest: float = 0.0
    _started: float = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        generation = info["generation"]
        self.collections[generation] += 1
        self.seconds[generation] += took
        self.longest = max(self.longest, took)

    def take(self) -> tuple[list[int], list[float], float]:
        """(collections, seconds) per generation and the longest pause since the last call."""
        snapshot = (self.collections, self.seconds, self.longest)
        self.collections, self.seconds, self.longest = [0, 0, 0], [0.0, 0.0, 0.0], 0.0
        return snapshot

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)
