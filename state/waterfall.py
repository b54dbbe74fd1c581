"""The default waterfall: find liquidatable accounts, close them, cover, deleverage.

Finding accounts at risk costs O(accounts at risk), not O(accounts), through a node-local index
ordered by *distance to liquidation*. Each indexed account gets a key ``drift_then + buffer /
exposure`` where buffer is ``equity - MMR`` (less a rounding slack) and exposure bounds how fast
that buffer can shrink: every block adds to a global ``drift`` counter the largest per-market move
(price and funding) measured against a fixed per-market scale, and the account cannot become
liquidatable before ``drift`` reaches its key (see ``LiquidationIndex.on_moves``). Only accounts
whose key is reached are re-evaluated exactly. The index is a filter that never misses an account;
which accounts are liquidated, and in which order, is decided by exact margin arithmetic, so the
index may differ between nodes (it is rebuilt from the store on open) without affecting the state.

The waterfall for one account (DESIGN.md section 6), every step an event:
1. plan the closes: all positions if equity <= 0, otherwise just enough (by lots, largest
   notional first) to restore initial margin;
2. fill them against registered backstop liquidity at oracle minus its discount; the account's
   loss is bounded by its bankruptcy price (its equity shared across positions by MMR), and the
   insurance fund pays the difference when the backstop price is worse;
3. the liquidation fee, from what equity is left, goes to the insurance fund;
4. what the fund cannot pay is deleveraged: opposite positions ranked by profit x leverage take
   the rest at the bankruptcy price.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any

from state.execute import apply_fill, event, settle_all
from state.model import FUNDING_SCALE, PPM, Account
from state.risk import ceil_div, is_liquidatable, risk_of

if TYPE_CHECKING:
    from state.app import ClearingApp


class LiquidationIndex:
    def __init__(self) -> None:
        self.heap: list[tuple[int, bytes]] = []
        self.keys: dict[bytes, int] = {}
        self.drift = 0  # ppm of the per-market scale, summed over blocks
        self.scale: dict[str, int] = {}  # market -> quote micro-units per size unit at the last rebuild
        self.stale = True

    def invalidate(self) -> None:
        self.stale = True

    def rebuild(self, app: ClearingApp) -> None:
        ledger = app.ledger
        self.scale = {m: max(1, mk.price * mk.params.value_multiplier) for m, mk in ledger.w_markets.items()}
        self.drift = 0
        self.keys = {}
        self.heap = []
        addresses = set(ledger.accounts) | set(ledger.block_accounts)
        for address in addresses:
            self.update(app, address, push=False)
        self.heap = [(key, address) for address, key in self.keys.items()]
        heapq.heapify(self.heap)
        self.stale = False

    def on_moves(self, moves: dict[str, tuple[int, int, int]], markets: dict[str, Any]) -> None:
        """Account for one block's moves: ``market -> (old price, new price, funding index change)``.

        A position of size s loses at most ``|s| * (|dP| * mult + |dF| / scale)`` per block, which is
        bounded by ``|s| * S_m * d_drift / 1e6`` for ``d_drift = max_m ceil(move_m * 1e6 / S_m)``.
        """
        step = 0
        for market_id, (old, new, dfunding) in moves.items():
            scale = self.scale.get(market_id)
            mult = markets[market_id].params.value_multiplier
            if scale is None or not scale <= 2 * new * mult or not new * mult <= 2 * scale:
                self.stale = True  # the scale no longer fits the price: rebuild (rare)
                return
            move = abs(new - old) * mult + ceil_div(abs(dfunding), FUNDING_SCALE)
            step = max(step, ceil_div(move * PPM, scale))
        self.drift += step

    def update(self, app: ClearingApp, address: bytes, push: bool = True) -> None:
        ledger = app.ledger
        account = ledger.account(address)
        if account is None or not account.positions:
            self.keys.pop(address, None)
            return
        equity, _imr, mmr = risk_of(account, ledger.w_markets, ledger.pricing)
        exposure = 1
        for market_id, (size, _snap, _cost) in account.positions.items():
            market = ledger.w_markets[market_id]
            scale = self.scale.get(market_id) or max(1, market.price * market.params.value_multiplier)
            exposure += ceil_div(abs(size) * scale * (PPM + market.params.maintenance_margin_ppm), PPM)
        for symbol, amount in account.collateral.items():
            pricing = ledger.pricing[symbol]
            mult = ledger.w_markets[pricing.market].params.value_multiplier
            scale = self.scale.get(pricing.market, 1)
            exposure += ceil_div(amount * scale * pricing.num, pricing.den * mult)
        buffer = equity - mmr - 2 * len(account.positions) - len(account.collateral) - 1
        key = self.drift + (buffer * PPM // exposure if buffer > 0 else 0)
        self.keys[address] = key
        if push:
            heapq.heappush(self.heap, (key, address))

    def due(self) -> list[bytes]:
        """Addresses whose key the drift has reached (popped; re-evaluate and update them)."""
        out = []
        heap, keys, drift = self.heap, self.keys, self.drift
        while heap and heap[0][0] <= drift:
            key, address = heapq.heappop(heap)
            if keys.get(address) == key:
                out.append(address)
                del keys[address]
        if len(heap) > 4 * len(keys) + 1024:  # drop stale entries now and then
            self.heap = [(k, a) for a, k in keys.items()]
            heapq.heapify(self.heap)
        return out


def run(app: ClearingApp) -> list[dict[str, Any]]:
    """Step 1 to 4 for every liquidatable account, in (health, address) order."""
    index = app.liquidations
    ledger = app.ledger
    if index.stale:
        index.rebuild(app)
    for address in app.touched:
        index.update(app, address)
    app.touched = set()
    at_risk = []
    for address in index.due():
        account = ledger.account(address)
        if account is None:
            continue
        equity, _imr, mmr = risk_of(account, ledger.w_markets, ledger.pricing)
        if is_liquidatable(equity, mmr):
            at_risk.append((equity * PPM // mmr, address))
        else:
            index.update(app, address)
    events: list[dict[str, Any]] = []
    for _health, address in sorted(at_risk):
        liquidate(app, address, events)
    for address in app.touched | {address for _health, address in at_risk}:
        index.update(app, address)
    app.touched = set()
    return events


def _bankrupt_cash(delta: int, price: int, mult: int, equity: int, mmr_m: int, mmr: int, part: int,
                   whole: int) -> int:
    """Cash to the account for closing ``delta`` (``part`` of a ``whole`` position) at its bankruptcy price.

    The account's equity is shared across positions by their MMR; rounded in the account's favour
    so that closing everything at bankruptcy leaves equity >= 0, never below.
    """
    return ceil_div(-delta * price * mult * mmr * whole - equity * mmr_m * part, mmr * whole)


def _plan(app: ClearingApp, account: Account, equity: int, imr: int) -> dict[str, int]:
    markets = app.ledger.w_markets
    if equity <= 0:
        return {m: abs(p[0]) for m, p in account.positions.items()}
    need = imr - equity
    fee_ppm = app.ledger.g.risk.liquidation_fee_ppm
    order = sorted(account.positions, key=lambda m: (-abs(account.positions[m][0]) * markets[m].price
                                                     * markets[m].params.value_multiplier, m))
    plan: dict[str, int] = {}
    for market_id in order:
        market = markets[market_id]
        size = abs(account.positions[market_id][0])
        unit = market.price * market.params.value_multiplier
        discounts = [d for _s, d in app.ledger.backstops.get(market_id, {}).values()]
        cost = ceil_div(unit * (max(discounts, default=0) + fee_ppm), PPM)
        relief = unit * market.imf_ppm // PPM
        if relief > cost and need > 0:
            lot = market.params.lot_size
            q = min(size, ceil_div(ceil_div(need, relief - cost), lot) * lot)
        else:
            q = size
        plan[market_id] = q
        need -= q * (relief - cost)
        if need <= 0:
            break
    return plan


def liquidate(app: ClearingApp, address: bytes, events: list[dict[str, Any]]) -> None:
    ledger = app.ledger
    markets = ledger.w_markets
    g = ledger.g
    account = ledger.account_mut(address)
    settle_all(app, account)
    equity, imr, mmr = risk_of(account, markets, ledger.pricing)
    if not is_liquidatable(equity, mmr):
        return
    app.emit(events, event("liquidation", account=address, equity=equity, mmr=mmr, imr=imr))
    plan = _plan(app, account, equity, imr)
    closed_notional = 0
    for market_id in sorted(plan):
        market = markets[market_id]
        mult, price = market.params.value_multiplier, market.price
        size = account.positions[market_id][0]
        whole, sign = abs(size), (1 if size > 0 else -1)
        mmr_m = ceil_div(whole * price * mult * market.params.maintenance_margin_ppm, PPM)
        remaining = plan[market_id]
        book = ledger.backstops.get(market_id, {})
        for provider, (capacity, discount) in sorted(book.items(), key=lambda item: (item[1][1], item[0])):
            if remaining == 0:
                break
            if provider == address:
                continue
            q = min(remaining, capacity)
            delta = -sign * q
            cash_b = _bankrupt_cash(delta, price, mult, equity, mmr_m, mmr, q, whole)
            cash_bs = (-delta * price * mult * (PPM + (discount if delta > 0 else -discount))) // PPM
            shortfall = max(0, cash_b - cash_bs)
            if shortfall and shortfall > g.insurance:
                break  # the fund cannot pay this fill's loss: deleverage the rest
            other = ledger.account(provider) or Account()
            held = other.positions[market_id][0] if market_id in other.positions else 0
            e2, i2, _m2 = risk_of(other, markets, ledger.pricing, (market_id, held + sign * q, -cash_bs))
            if e2 < i2:
                continue  # this backstop cannot carry it
            apply_fill(app, address, account, market_id, delta, cash_bs)
            apply_fill(app, provider, ledger.account_mut(provider), market_id, -delta, -cash_bs)
            ledger.set_backstop(market_id, provider, capacity - q, discount)
            closed_notional += q * price * mult
            remaining -= q
            app.emit(events, event("liquidation_fill", account=address, counterparty=provider, market=market_id,
                                   size=delta, cash=cash_bs, oracle_price=price, discount_ppm=discount))
            if shortfall:
                g.insurance -= shortfall
                account.quote += shortfall
                app.emit(events, event("insurance_cover", account=address, amount=shortfall,
                                       fund_left=g.insurance))
        if remaining:
            _deleverage(app, address, account, market_id, remaining, sign, equity, mmr_m, mmr, whole, events)
    equity_after, _i, _m = risk_of(account, markets, ledger.pricing)
    fee = min(ceil_div(closed_notional * g.risk.liquidation_fee_ppm, PPM), max(0, equity_after))
    if fee:
        account.quote -= fee
        g.insurance += fee
        equity_after -= fee
        app.emit(events, event("liquidation_fee", account=address, amount=fee, fund=g.insurance))
    if equity_after < 0 and not account.positions:  # rounding residue only; never expected
        cover = min(max(0, g.insurance), -equity_after)  # a fund in debt covers nothing
        g.insurance -= cover
        account.quote += cover
        equity_after += cover
        app.emit(events, event("insurance_cover", account=address, amount=cover, fund_left=g.insurance))
    app.emit(events, event("liquidation_done", account=address, equity=equity_after,
                           positions=len(account.positions)))


def _deleverage(app: ClearingApp, address: bytes, account: Account, market_id: str, remaining: int, sign: int,
                equity: int, mmr_m: int, mmr: int, whole: int, events: list[dict[str, Any]]) -> None:
    """Close ``remaining`` against opposite positions ranked by profit x leverage, at the bankruptcy price."""
    ledger = app.ledger
    markets = ledger.w_markets
    market = markets[market_id]
    mult, price = market.params.value_multiplier, market.price
    ranked = []
    for other_address in ledger.holders.get(market_id, ()):
        if other_address == address:
            continue
        other = ledger.account(other_address)
        size, _snap, cost = other.positions[market_id]
        if (size > 0) == (sign > 0):
            continue
        equity_o, _i, _m = risk_of(other, markets, ledger.pricing)
        notional = sum(abs(s) * markets[m].price * markets[m].params.value_multiplier
                       for m, (s, _x, _c) in other.positions.items())
        profit = size * price * mult - cost
        score = profit * notional // equity_o if equity_o > 0 else profit * notional
        ranked.append((-score, other_address))
    ranked.sort()
    for _score, other_address in ranked:
        if remaining == 0:
            break
        other = ledger.account_mut(other_address)
        take = min(remaining, abs(other.positions[market_id][0]))
        delta = -sign * take
        cash = _bankrupt_cash(delta, price, mult, equity, mmr_m, mmr, take, whole)
        apply_fill(app, address, account, market_id, delta, cash)
        apply_fill(app, other_address, other, market_id, -delta, -cash)
        remaining -= take
        app.emit(events, event("deleverage", account=address, counterparty=other_address, market=market_id,
                               size=delta, cash=cash, oracle_price=price))


def cover_collateral_debts(app: ClearingApp) -> list[dict[str, Any]]:
    """Step 5: no account without positions carries quote debt into the next block.

    Quote goes negative by what positions are worth; once the last position is closed (by the
    account, a liquidation or deleveraging) a loss backed by haircut collateral would leave debt
    that nothing liquidates, and a later fall of the collateral's price would turn it into
    negative equity. So, for every account written in this block that holds no position and owes
    quote, the insurance fund takes over just enough collateral at its haircut value (what equity
    counts it for, so equity is unchanged and the fund keeps the haircut). The fund pays even
    when that takes its quote balance below zero: it then owns collateral worth more than it owes
    (a fund with a negative balance covers no shortfall, so the waterfall goes to deleveraging).
    """
    ledger = app.ledger
    g = ledger.g
    events: list[dict[str, Any]] = []
    for address in sorted(ledger.block_accounts):
        account = ledger.block_accounts[address]
        if account.positions or account.quote >= 0 or not account.collateral:
            continue
        for symbol in sorted(account.collateral):
            if account.quote >= 0:
                break
            pricing = ledger.pricing[symbol]
            price = ledger.w_markets[pricing.market].price
            unit = price * pricing.num
            if unit == 0:
                continue
            amount = min(account.collateral[symbol], ceil_div(-account.quote * pricing.den, unit))
            value = pricing.value(amount, price)
            if amount == 0 or value == 0:
                continue
            left = account.collateral[symbol] - amount
            if left:
                account.collateral[symbol] = left
            else:
                del account.collateral[symbol]
            g.insurance_collateral[symbol] = g.insurance_collateral.get(symbol, 0) + amount
            g.insurance -= value
            account.quote += value
            app.emit(events, event("collateral_conversion", account=address, asset=symbol, amount=amount,
                                   value=value, fund_left=g.insurance))
    return events
