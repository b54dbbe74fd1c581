"""Pure risk arithmetic: cross margin, collateral haircuts, funding, oracle aggregation, dynamic IMF.

Integers only; every division states its rounding, and rounding favours the system:
requirements and debits round up (``ceil_div``), credits round down (floor ``//``).
"""

from __future__ import annotations

from collections.abc import Mapping

from state.genesis import CollateralAsset
from state.model import FUNDING_SCALE, PPM, Account, Market


def ceil_div(a: int, b: int) -> int:
    """Ceiling of a / b for b > 0."""
    return -((-a) // b)


class CollateralPricing:
    """How a haircut collateral asset is valued: ``amount * price * num // den`` quote micro-units."""

    __slots__ = ("den", "market", "num", "symbol")

    def __init__(self, asset: CollateralAsset, price_exponent: int, quote_decimals: int) -> None:
        exponent = price_exponent - asset.decimals + quote_decimals
        self.symbol = asset.symbol
        self.market = asset.price_market
        self.num = asset.weight_ppm * 10 ** max(exponent, 0)
        self.den = PPM * 10 ** max(-exponent, 0)

    def value(self, amount: int, price: int) -> int:
        """Haircut value, rounded down (a credit)."""
        return amount * price * self.num // self.den


def cash_of(account: Account, markets: Mapping[str, Market]) -> int:
    """Quote balance net of position values: what the account holds in quote beyond its positions.

    Quote may go negative by what positions are worth (buying moves quote down), but
    withdrawals and transfers of quote never borrow against haircut collateral.
    """
    cash = account.quote
    for market_id, (size, _snapshot, _cost) in account.positions.items():
        market = markets[market_id]
        cash += size * market.price * market.params.value_multiplier
    return cash


def pending_funding(size: int, snapshot: int, index: int) -> int:
    """Funding owed to (positive) or by (negative) a position, in FUNDING_SCALE units, exact."""
    return -size * (index - snapshot)


def risk_of(account: Account, markets: Mapping[str, Market], pricing: Mapping[str, CollateralPricing],
            override: tuple[str, int, int] | None = None) -> tuple[int, int, int]:
    """(equity, IMR, MMR) of ``account`` at oracle prices, unsettled funding included.

    ``override = (market, new_size, quote_delta)`` evaluates the account as if that position had
    ``new_size`` and the quote balance moved by ``quote_delta`` (a what-if for a trade).
    """
    equity = account.quote
    imr = mmr = 0
    positions = account.positions
    if override is not None:
        o_market, _o_size, o_quote = override
        equity += o_quote
        if o_market not in positions:
            positions = dict(positions)
            positions[o_market] = (0, markets[o_market].funding_index, 0)
    for market_id, (size, snapshot, _cost) in positions.items():
        market = markets[market_id]
        if override is not None and market_id == override[0]:
            if snapshot != market.funding_index:  # funding accrued on the old size
                equity += pending_funding(size, snapshot, market.funding_index) // FUNDING_SCALE
            size = override[1]
        elif snapshot != market.funding_index:
            equity += pending_funding(size, snapshot, market.funding_index) // FUNDING_SCALE
        if size == 0:
            continue
        value = size * market.price * market.params.value_multiplier
        equity += value
        notional = value if value > 0 else -value
        imr += -((-notional * market.imf_ppm) // PPM)
        mmr += -((-notional * market.params.maintenance_margin_ppm) // PPM)
    for symbol, amount in account.collateral.items():
        if amount:
            p = pricing[symbol]
            equity += p.value(amount, markets[p.market].price)
    return equity, imr, mmr


def margin_allows(before: tuple[int, int, int], after: tuple[int, int, int]) -> bool:
    """A change is allowed iff initial margin holds afterwards, or it reduces risk.

    Reducing risk: MMR does not rise and equity/MMR does not fall (cross-multiplied).
    """
    equity, _imr, mmr = before
    equity2, imr2, mmr2 = after
    if equity2 >= imr2:
        return True
    if mmr2 > mmr or mmr2 == 0:
        return False
    return equity2 * mmr >= equity * mmr2


def is_liquidatable(equity: int, mmr: int) -> bool:
    return mmr > 0 and equity < mmr


def settle_funding(account: Account, market: Market, market_id: str) -> int:
    """Settle one position against its market's funding index; return the quote credited.

    The credit is rounded down; the remainder (in FUNDING_SCALE units) is the market's
    ``funding_dust``, kept by the system so that funding can never create money.
    """
    size, snapshot, cost = account.positions[market_id]
    if snapshot == market.funding_index:
        return 0
    exact = pending_funding(size, snapshot, market.funding_index)
    credit = exact // FUNDING_SCALE
    market.funding_dust += exact - credit * FUNDING_SCALE
    account.quote += credit
    account.positions[market_id] = (size, market.funding_index, cost)
    return credit


# --- oracle --------------------------------------------------------------------------------


def weighted_median(reports: list[tuple[int, int]]) -> int:
    """Lower weighted median of ``(price, power)``: the smallest price with half the power at or below."""
    ordered = sorted(reports)
    total = sum(power for _, power in ordered)
    cumulative = 0
    for price, power in ordered:
        cumulative += power
        if 2 * cumulative >= total:
            return price
    raise ValueError("no reports")


def cap_bounds(previous: int, max_move_ppm: int) -> tuple[int, int]:
    """The lowest and highest price one block may move to from ``previous``.

    At least one unit either way (a price of a few units could otherwise never move at a
    small cap), never below 1.
    """
    low = max(1, min(previous - 1, ceil_div(previous * (PPM - max_move_ppm), PPM)))
    high = max(previous + 1, previous * (PPM + max_move_ppm) // PPM)
    return low, high


def capped_price(previous: int, proposed: int, max_move_ppm: int) -> int:
    """Bound a new price to the move cap around ``previous``."""
    low, high = cap_bounds(previous, max_move_ppm)
    return min(max(proposed, low), high)


def next_volatility(ewma_ppm: int, previous: int, price: int, alpha_ppm: int) -> int:
    """Integer EWMA of the absolute per-update return (ppm)."""
    ret = abs(price - previous) * PPM // previous
    return max(0, ewma_ppm + (ret - ewma_ppm) * alpha_ppm // PPM)


def dynamic_imf(market: Market) -> int:
    """Initial margin fraction raised with open interest and with volatility; never below the base."""
    p = market.params
    base = p.initial_margin_ppm
    oi_notional = market.open_interest * market.price * p.value_multiplier
    if oi_notional <= p.oi_lower_cap:
        oi_add = 0
    elif oi_notional >= p.oi_upper_cap:
        oi_add = PPM - base
    else:
        oi_add = ceil_div((PPM - base) * (oi_notional - p.oi_lower_cap), p.oi_upper_cap - p.oi_lower_cap)
    vol_add = min(p.max_volatility_imf_ppm, ceil_div(market.vol_ewma_ppm * p.volatility_imf_multiplier_ppm, PPM))
    return min(PPM, base + oi_add + vol_add)


def funding_rate(market: Market) -> int:
    """Premium of cleared trade prices over the oracle, clamped, in ppm.

    The size-weighted premium is divided by at least the market's impact size (its
    ``funding_impact_notional`` in size units), so trades smaller than that move the rate in
    proportion to their size: one lot cannot set it.
    """
    clamp = market.params.funding_clamp_ppm
    if market.premium_weight == 0 or market.price == 0:
        return 0
    unit = market.price * market.params.value_multiplier
    impact = max(1, ceil_div(market.params.funding_impact_notional, unit))
    premium = market.premium_sum * PPM // (max(market.premium_weight, impact) * market.price)
    return max(-clamp, min(clamp, premium))


def stressed_risk(account: Account, markets: Mapping[str, Market],
                  pricing: Mapping[str, CollateralPricing]) -> tuple[int, int, int]:
    """(equity, IMR, MMR) with each position at the worse of its market's applied price and
    reported median (a long at the lower, a short at the higher), collateral at the lower.

    What withdrawals and transfers are checked at: while an oracle lags the feeders (breaker
    ``capped`` or ``halted``) value cannot leave at the stale, better price. Equal to
    :func:`risk_of` while every market's breaker is normal (the two prices are then equal).
    """
    equity = account.quote
    imr = mmr = 0
    for market_id, (size, snapshot, _cost) in account.positions.items():
        market = markets[market_id]
        if snapshot != market.funding_index:
            equity += pending_funding(size, snapshot, market.funding_index) // FUNDING_SCALE
        reported = market.reported or market.price
        price = min(market.price, reported) if size > 0 else max(market.price, reported)
        value = size * price * market.params.value_multiplier
        equity += value
        notional = abs(value)
        imr += ceil_div(notional * market.imf_ppm, PPM)
        mmr += ceil_div(notional * market.params.maintenance_margin_ppm, PPM)
    for symbol, amount in account.collateral.items():
        if amount:
            p = pricing[symbol]
            market = markets[p.market]
            equity += p.value(amount, min(market.price, market.reported or market.price))
    return equity, imr, mmr
