"""Funding: one market's step of ``begin_block``, after the oracle.

Every elapsed interval is paid (a chain that stalled for three intervals pays three), each at
the rate of the premium observed since the last payment (``risk.funding_rate``: size-weighted,
at least the impact size in the denominator, clamped). Positions settle lazily against the
cumulative index; rounding remainders collect as ``funding_dust`` and whole micro-units of it go
to the insurance fund here.
"""

from __future__ import annotations

from state.events import Event, event
from state.model import FUNDING_SCALE, Globals, Market
from state.risk import funding_rate


def apply_funding(market_id: str, market: Market, time_ms: int) -> list[Event]:
    if time_ms < market.next_funding_ms:
        return []
    interval = market.params.funding_interval_ms
    intervals = (time_ms - market.next_funding_ms) // interval + 1
    rate = funding_rate(market)
    market.funding_index += rate * market.price * market.params.value_multiplier * intervals
    market.premium_sum = market.premium_weight = 0
    market.last_rate_ppm = rate
    market.next_funding_ms += intervals * interval
    return [event("funding", market=market_id, rate_ppm=rate, intervals=intervals, index=market.funding_index)]


def sweep_dust(market: Market, g: Globals) -> None:
    """Whole micro-units of funding rounding go to the insurance fund."""
    if market.funding_dust >= FUNDING_SCALE:
        g.insurance += market.funding_dust // FUNDING_SCALE
        market.funding_dust %= FUNDING_SCALE
