"""Re-dialling persistent peers: the node's policy, whatever py-libp2p caches or learns.

A persistent peer is dialled at the multiaddr of ``p2p.persistent_peers`` and at no other: the
operator's address is the route (a port mapping, NAT, a proxy), the one the peer advertises
through identify may be unreachable from here. Dial *n* (counted since the last connection
that held ``STABLE_CONNECTION_S``) starts :meth:`Backoff.delay` after dial *n - 1* started:

    base(n)  = dial_backoff_min_ms * 2 ** (n - 1), at most dial_backoff_max_ms
    delay(n) = uniform(base(n) / 2, base(n))        (validators cut off together re-dial apart)

so while a peer is down a dial starts at least every ``dial_backoff_max_ms``; a peer is dialled
at once when a stable connection to it is lost, and then after 0.1-0.2 s, 0.2-0.4 s, ... (the
defaults: 200 ms, 10 s). What an operator sees of it (``net_info``) is :class:`PeerState`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

STABLE_CONNECTION_S = 10.0
"""A connection to a persistent peer that held this long resets the dial count: a peer that
accepts and drops us at once (one refusing beyond its ``p2p.max_peers``) is dialled ever more
slowly, not every ``dial_backoff_min_ms`` with a Noise handshake each time."""


@dataclass(frozen=True)
class Backoff:
    """The wait between the starts of two dials to a peer that is down, in seconds."""

    minimum: float
    maximum: float

    def base(self, dials: int) -> float:
        """The longest wait after the ``dials``-th dial since the last stable connection."""
        return min(self.minimum * 2 ** max(dials - 1, 0), self.maximum)

    def delay(self, dials: int, rng: random.Random) -> float:
        base = self.base(dials)
        return rng.uniform(base / 2, base)


@dataclass
class PeerState:
    """One persistent peer as the operator sees it (``net_info``'s ``persistent_peers``)."""

    peer_id: str
    address: str
    """The configured multiaddr, the only one dialled."""
    connected: bool = False
    since_ms: int = 0
    """Wall clock (Unix ms) of the last change: connected since, or down since (at start: the
    node's start)."""
    dials: int = 0
    """Dials since the last stable connection (the backoff's ``n``)."""
    next_dial_ms: int | None = None
    """When the next dial is due (Unix ms); None while connected or dialling."""
    last_error: str = ""
    """Why the last dial failed, '' after a successful one."""
