"""The node's garbage-collector accounting counts collections by generation and resets on take."""

from __future__ import annotations

import gc

from node.gcstats import GCStats


def test_counts_full_collections_and_resets() -> None:
    stats = GCStats()
    stats.install()
    stats.install()  # idempotent: one callback, so each collection counts once
    try:
        gc.collect()
        gc.collect(0)
        collections, seconds, longest = stats.take()
    finally:
        stats.remove()
    assert collections[2] == 1 and collections[0] >= 1
    assert seconds[2] > 0 and longest >= seconds[2]
    assert stats.take() == ([0, 0, 0], [0.0, 0.0, 0.0], 0.0)
    gc.collect()
    assert stats.take()[0] == [0, 0, 0]  # removed: no longer called
