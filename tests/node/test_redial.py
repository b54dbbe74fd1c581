"""The re-dial backoff of persistent peers (node/p2p/redial.py)."""

from __future__ import annotations

import random

from node.p2p.redial import Backoff


def test_the_wait_doubles_from_the_minimum_up_to_the_cap() -> None:
    backoff = Backoff(0.2, 10.0)
    assert [backoff.base(n) for n in range(1, 9)] == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]
    assert backoff.base(0) == 0.2 and backoff.base(500) == 10.0


def test_the_wait_is_jittered_within_the_upper_half_and_never_past_the_cap() -> None:
    backoff, rng = Backoff(0.2, 10.0), random.Random(7)
    for n in (1, 4, 7, 30):
        waits = [backoff.delay(n, rng) for _ in range(500)]
        assert backoff.base(n) / 2 <= min(waits) and max(waits) <= backoff.base(n) <= 10.0
        assert max(waits) - min(waits) > backoff.base(n) / 4, "no jitter"
