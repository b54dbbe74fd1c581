"""The one shape of a state-machine event: ``{"type": kind, "attrs": {...}}``.

A leaf module, so every step (tx handlers, oracle, funding, waterfall, governance) builds
events the same way without importing each other.
"""

from __future__ import annotations

from typing import Any

Event = dict[str, Any]


def event(kind: str, /, **attrs: Any) -> Event:
    return {"type": kind, "attrs": attrs}
