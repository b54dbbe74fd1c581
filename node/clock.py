"""The node's wall clock in milliseconds: block and vote timestamps, the future-time check.

The consensus core and the app never read a clock; the node shell stamps what they see with
this one (``time.monotonic`` serves durations, not timestamps).
"""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the Unix epoch, as block headers and votes carry them."""
    return int(time.time() * 1000)
