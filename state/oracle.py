"""Oracle aggregation and the circuit breaker: one market's step of ``begin_block``.

The applied price moves toward the feeders' quorum median by at most the move cap per block.
A cap that only slows the price would be a lag, and a lagging oracle is a free option (trade
at the stale price, withdraw the profit before the price arrives), so while the median is
beyond the cap the market is in a named breaker state that the rest of the machine reads:

- ``normal``: the median is within the cap; the applied price is the median.
- ``capped``: the applied price walks by the cap toward the median; only risk-reducing trades,
  and withdrawals/transfers valued at the worse of the applied and reported prices
  (``risk.stressed_risk``).
- ``halted``: after ``breaker_halt_blocks`` capped blocks in a row the price freezes; the
  market reopens when the median comes back within the cap, or by a ``resume_market``
  proposal at the reported price.

Rules in ``state/README.md`` ("Oracle and circuit breaker").
"""

from __future__ import annotations

from state.events import Event, event
from state.genesis import RiskParams
from state.model import BREAKER_CAPPED, BREAKER_HALTED, BREAKER_NORMAL, Market
from state.risk import cap_bounds, next_volatility, weighted_median


def quorum(reports: dict[bytes, tuple[int, int]], feeders: dict[bytes, int], time_ms: int,
           staleness_ms: int) -> tuple[int, int] | None:
    """(median, quorum time) of the fresh reports, or None without > 2/3 of feeder power.

    The quorum time is the report time at which, from the newest report to the oldest (ties by
    feeder address), reporting power first passes 2/3: the price is as old as the oldest report
    its quorum needs.
    """
    total = sum(feeders.values())
    fresh = [(t, feeder, price, feeders[feeder]) for feeder, (price, t) in sorted(reports.items())
             if feeder in feeders and time_ms - t <= staleness_ms]
    if not total or 3 * sum(f[3] for f in fresh) <= 2 * total:
        return None
    median = weighted_median([(price, power) for _t, _f, price, power in fresh])
    power = 0
    for t, _feeder, _price, p in sorted(fresh, key=lambda f: (-f[0], f[1])):
        power += p
        if 3 * power > 2 * total:
            return median, t
    raise AssertionError("unreachable: the fresh power passes 2/3")


def apply_oracle_reports(market_id: str, market: Market, reports: dict[bytes, tuple[int, int]],
                         feeders: dict[bytes, int], time_ms: int, risk: RiskParams) -> list[Event]:
    """Move ``market``'s applied price and breaker state for one block; returns its events."""
    found = quorum(reports, feeders, time_ms, risk.oracle_staleness_ms)
    if found is None:
        return []
    median, quorum_ms = found
    market.reported = median
    old, state = market.price, market.breaker
    low, high = cap_bounds(old, risk.max_price_move_ppm)
    within = low <= median <= high
    if state == BREAKER_HALTED and not within:
        return []
    if within:
        market.price, market.breaker, market.capped_blocks = median, BREAKER_NORMAL, 0
    else:
        market.price = min(max(median, low), high)
        market.capped_blocks += 1
        halts = risk.breaker_halt_blocks and market.capped_blocks >= risk.breaker_halt_blocks
        market.breaker = BREAKER_HALTED if halts else BREAKER_CAPPED
    market.last_price_ms = quorum_ms
    market.vol_ewma_ppm = next_volatility(market.vol_ewma_ppm, old, market.price, risk.volatility_ewma_alpha_ppm)
    events = []
    if market.price != old:
        events.append(event("price", market=market_id, price=market.price, previous=old, reported=median))
    if market.breaker != state:
        events.append(event("breaker", market=market_id, state=market.breaker, price=market.price,
                            reported=median, capped_blocks=market.capped_blocks))
    return events


def market_status(market: Market, time_ms: int, staleness_ms: int) -> str:
    """``halted`` (governance), ``breaker_halted``, ``stale``, ``capped`` or ``active``.

    Only an ``active`` market accepts trades that increase a position.
    """
    if market.params.status != "active":
        return market.params.status
    if market.breaker == BREAKER_HALTED:
        return "breaker_halted"
    if time_ms - market.last_price_ms > staleness_ms:
        return "stale"
    if market.breaker == BREAKER_CAPPED:
        return "capped"
    return "active"


def resume(market: Market) -> None:
    """Governance reopens a halted market where the feeders say it is (uncapped)."""
    market.price = market.reported or market.price
    market.breaker, market.capped_blocks = BREAKER_NORMAL, 0


__all__ = ["apply_oracle_reports", "market_status", "quorum", "resume"]
