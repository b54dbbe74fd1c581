"""The node's wall clock in milliseconds: block and vote timestamps, the future-time check.

The consensus core and the app never read a clock; the node shell stamps what they see with
this one (``time.monotonic`` serves durations, not timestamps). A fault test skews one
validator's clock through ``[fault_injection] clock_offset_ms`` (node/faults.py), the one
place that calls :func:`set_offset_ms`.
"""

from __future__ import annotations

import time

_offset_ms = 0


def set_offset_ms(offset: int) -> None:
    """Make this process's clock read ``offset`` ms ahead (negative: behind) of the system's."""
    global _offset_ms
    _offset_ms = offset


def now_ms() -> int:
    """Milliseconds since the Unix epoch, as block headers and votes carry them."""
    return int(time.time() * 1000) + _offset_ms
