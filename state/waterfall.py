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

The waterfall for one account (rules and reasoning in ``state/README.md``), every step an event:
1. plan the closes: all positions if equity <= 0, otherwise lots (largest notional first) until
   initial margin is restored net of the fee;
2. backstops take them at oracle minus their discount, while the fund could pay any deficit
   that leaves;
3. the liquidation fee (backstop discounts included) from what equity is left, to the fund;
4. the insurance fund pays the account's deficit, as far as it can;
5. the rest closes against opposite positions in profit, ranked by profit x leverage, at the
   oracle price; a deficit the fund could not pay is charged to them per market, only in the
   markets where the account lost, at most their profit and never into negative equity;
6. what no one could absorb is written off as socialized loss, in the open;
7. (``cover_collateral_debts``) debt left with no position is paid in collateral to the fund.
"""

from __future__ import annotations

import heapq
from typing import Any

from state.env import BlockEnv
from state.events import event
from state.execute import apply_fill, settle_all
from state.ledger import Ledger
from state.model import FUNDING_SCALE, PPM, Account
from state.risk import ceil_div, is_liquidatable, risk_of



class LiquidationIndex:
    def __init__(self) -> None:
        self.heap: list[tuple[int, bytes]] = []
        self.keys: dict[bytes, int] = {}
        self.drift = 0  # ppm of the per-market scale, summed over blocks
        self.scale: dict[str, int] = {}  # market -> quote micro-units per size unit at the last rebuild
        self.stale = True

    def invalidate(self) -> None:
        self.stale = True

    def rebuild(self, ledger: Ledger) -> None:
        self.scale = {m: max(1, mk.price * mk.params.value_multiplier) for m, mk in ledger.w_markets.items()}
        self.drift = 0
        self.keys = {}
        self.heap = []
        addresses = set(ledger.accounts) | set(ledger.block_accounts)
        for address in addresses:
            self.update(ledger, address, push=False)
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

    def update(self, ledger: Ledger, address: bytes, push: bool = True) -> None:
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

    def nearest(self, limit: int) -> list[bytes]:
        """Up to ``limit`` indexed accounts, smallest key first: those the fewest price moves
        could make liquidatable. A best-first walk of the heap (a node's children are never
        smaller), so it costs O(limit log limit) plus the stale entries met, not O(accounts).
        Read-only: the heap and keys are left as they are."""
        heap, keys = self.heap, self.keys
        out: list[bytes] = []
        seen: set[bytes] = set()
        frontier = [(heap[0][0], 0)] if heap else []
        while frontier and len(out) < limit:
            _key, i = heapq.heappop(frontier)
            key, address = heap[i]
            for child in (2 * i + 1, 2 * i + 2):
                if child < len(heap):
                    heapq.heappush(frontier, (heap[child][0], child))
            if keys.get(address) == key and address not in seen:  # else a stale entry
                seen.add(address)
                out.append(address)
        return out

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


def run(env: BlockEnv, index: LiquidationIndex) -> list[dict[str, Any]]:
    """Steps 1 to 6 for every liquidatable account, in (health, address) order."""
    ledger = env.ledger
    if index.stale:
        index.rebuild(ledger)
    for address in env.touched:
        index.update(ledger, address)
    env.touched = set()
    at_risk = []
    for address in index.due():
        account = ledger.account(address)
        if account is None:
            continue
        equity, _imr, mmr = risk_of(account, ledger.w_markets, ledger.pricing)
        if is_liquidatable(equity, mmr):
            at_risk.append((equity * PPM // mmr, address))
        else:
            index.update(ledger, address)
    events: list[dict[str, Any]] = []
    for _health, address in sorted(at_risk):
        liquidate(env, address, events)
    for address in env.touched | {address for _health, address in at_risk}:
        index.update(ledger, address)
    env.touched = set()
    return events


def _plan(env: BlockEnv, account: Account, equity: int, imr: int) -> dict[str, int]:
    """Sizes to close: everything if insolvent, else lots by largest notional until initial
    margin is restored net of the liquidation fee (README "Default waterfall", step 1)."""
    markets = env.ledger.w_markets
    if equity <= 0:
        return {m: abs(p[0]) for m, p in account.positions.items()}
    need = imr - equity
    fee_ppm = env.ledger.g.risk.liquidation_fee_ppm
    order = sorted(account.positions, key=lambda m: (-abs(account.positions[m][0]) * markets[m].price
                                                     * markets[m].params.value_multiplier, m))
    plan: dict[str, int] = {}
    for market_id in order:
        market = markets[market_id]
        size = abs(account.positions[market_id][0])
        unit = market.price * market.params.value_multiplier
        cost = ceil_div(unit * fee_ppm, PPM)
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


def _losses(account: Account, markets: dict[str, Any]) -> dict[str, int]:
    """Each position's loss against its cost basis: what a deficit is attributed by."""
    losses = {}
    for market_id, (size, _snapshot, cost) in sorted(account.positions.items()):
        market = markets[market_id]
        losses[market_id] = max(0, cost - size * market.price * market.params.value_multiplier)
    return losses


def liquidate(env: BlockEnv, address: bytes, events: list[dict[str, Any]]) -> None:
    """Steps 1-6 for one account; its events are kept only if something moved."""
    ledger = env.ledger
    markets = ledger.w_markets
    account = ledger.account_mut(address)
    settle_all(env, account)
    equity, imr, mmr = risk_of(account, markets, ledger.pricing)
    if not is_liquidatable(equity, mmr):
        return
    out = [event("liquidation", account=address, equity=equity, mmr=mmr, imr=imr)]
    losses = _losses(account, markets)
    plan = _plan(env, account, equity, imr)
    whole = {m: abs(p[0]) for m, p in account.positions.items()}
    moved = _close(env, address, account, plan, equity, losses, out)
    equity, imr, _mmr = risk_of(account, markets, ledger.pricing)
    if plan != whole and account.positions and equity < imr:  # a partial plan fell short: close all
        plan = {m: abs(p[0]) for m, p in account.positions.items()}
        moved |= _close(env, address, account, plan, equity, losses, out)
        equity, _imr, _mmr = risk_of(account, markets, ledger.pricing)
    if not moved:
        return
    out.append(event("liquidation_done", account=address, equity=equity, positions=len(account.positions)))
    for ev in out:
        env.emit(events, ev)


def _close(env: BlockEnv, address: bytes, account: Account, plan: dict[str, int], equity: int,
           losses: dict[str, int], out: list[dict[str, Any]]) -> bool:
    """Steps 2-6 for ``plan`` (market -> size to close); returns whether anything moved."""
    ledger = env.ledger
    markets = ledger.w_markets
    g = ledger.g
    moved = False
    closed = discounts = 0
    residual: dict[str, int] = {}
    # 2. backstops, at oracle minus their discount, while the fund could pay the deficit they leave
    for market_id in sorted(plan):
        market = markets[market_id]
        mult, price = market.params.value_multiplier, market.price
        sign = 1 if account.positions[market_id][0] > 0 else -1
        left = plan[market_id]
        book = ledger.backstops.get(market_id, {})
        for provider, (capacity, discount) in sorted(book.items(), key=lambda item: (item[1][1], item[0])):
            if left == 0:
                break
            if provider == address:
                continue
            q = min(left, capacity)
            delta = -sign * q
            cash = (-delta * price * mult * (PPM + (discount if delta > 0 else -discount))) // PPM
            cost = -delta * price * mult - cash  # the discount, what the account gives up
            other = ledger.account(provider) or Account()
            held = other.positions[market_id][0] if market_id in other.positions else 0
            e2, i2, _m2 = risk_of(other, markets, ledger.pricing, (market_id, held + sign * q, -cash))
            if e2 < i2:
                continue  # this backstop cannot carry it: no fill, so nothing to weigh
            if max(0, cost - equity) > max(0, g.insurance):
                break  # a deficit the fund could not pay: the rest goes to deleveraging
            apply_fill(env, address, account, market_id, delta, cash)
            apply_fill(env, provider, ledger.account_mut(provider), market_id, -delta, -cash)
            ledger.set_backstop(market_id, provider, capacity - q, discount)
            equity -= cost
            closed += q * price * mult
            discounts += cost
            left -= q
            moved = True
            out.append(event("liquidation_fill", account=address, counterparty=provider, market=market_id,
                             size=delta, cash=cash, oracle_price=price, discount_ppm=discount))
        if left:
            residual[market_id] = left
    # 5's candidates are ranked now: what they can close counts toward the fee
    ranked = {m: _candidates(env, address, m, 1 if account.positions[m][0] > 0 else -1) for m in residual}
    for market_id, left in residual.items():
        market = markets[market_id]
        closable = min(left, sum(abs(c[2]) for c in ranked[market_id]))
        closed += closable * market.price * market.params.value_multiplier
    # 3. the liquidation fee, backstop discounts included, from what equity is left
    fee = min(max(0, ceil_div(closed * g.risk.liquidation_fee_ppm, PPM) - discounts), max(0, equity))
    if fee:
        account.quote -= fee
        g.insurance += fee
        equity -= fee
        moved = True
        out.append(event("liquidation_fee", account=address, amount=fee, fund=g.insurance))
    # 4. the insurance fund pays the deficit, as far as it can
    if equity < 0:
        cover = min(max(0, g.insurance), -equity)
        if cover:
            g.insurance -= cover
            account.quote += cover
            equity += cover
            moved = True
            out.append(event("insurance_cover", account=address, amount=cover, fund_left=g.insurance))
    # 5. deleveraging at the oracle price; a deficit the fund left is charged per market
    deficit = max(0, -equity)
    total_loss = sum(losses.values())
    owed = {m: min(losses[m], deficit * losses[m] // total_loss) if total_loss else 0 for m in losses}
    for market_id in sorted(residual):
        market = markets[market_id]
        mult, price = market.params.value_multiplier, market.price
        sign = 1 if account.positions[market_id][0] > 0 else -1
        left = residual[market_id]
        for other_address, pnl, size in ranked[market_id]:
            if left == 0:
                break
            take = min(left, abs(size))
            other = ledger.account_mut(other_address)
            charge = 0
            if owed.get(market_id, 0) > 0:
                other_equity, _i, _m = risk_of(other, markets, ledger.pricing)
                charge = min(owed[market_id], max(0, min(pnl * take // abs(size), other_equity)))
                owed[market_id] -= charge
            cash = sign * take * price * mult + charge
            apply_fill(env, address, account, market_id, -sign * take, cash)
            apply_fill(env, other_address, other, market_id, sign * take, -cash)
            equity += charge
            left -= take
            moved = True
            out.append(event("deleverage", account=address, counterparty=other_address, market=market_id,
                             size=-sign * take, cash=cash, oracle_price=price, charge=charge))
    # 6. what no one could absorb is written off, in the open
    if equity < 0:
        loss = -equity
        account.quote += loss
        g.socialized_loss += loss
        equity = 0
        moved = True
        out.append(event("socialized_loss", account=address, amount=loss, total=g.socialized_loss))
    return moved


def _candidates(env: BlockEnv, address: bytes, market_id: str, sign: int) -> list[tuple[bytes, int, int]]:
    """Opposite positions in profit in ``market_id`` of accounts not themselves liquidatable, in
    deleveraging order: (address, pnl, size).

    Ranked by profit ratio x leverage, ``pnl * notional * 1e6 // (max(1, |cost|) * max(1, equity))``
    descending, then address (Hyperliquid's ADL order).
    """
    ledger = env.ledger
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
        pnl = size * price * mult - cost
        if pnl <= 0:
            continue
        equity, _i, mmr = risk_of(other, markets, ledger.pricing)
        if is_liquidatable(equity, mmr):
            continue  # its own liquidation closes it; taking its profit first would strand its debt
        notional = sum(abs(s) * markets[m].price * markets[m].params.value_multiplier
                       for m, (s, _x, _c) in other.positions.items())
        score = pnl * notional * PPM // (max(1, abs(cost)) * max(1, equity))
        ranked.append((-score, other_address, pnl, size))
    ranked.sort()
    return [(a, pnl, size) for _score, a, pnl, size in ranked]


def cover_collateral_debts(env: BlockEnv) -> list[dict[str, Any]]:
    """Step 7: no account without positions carries quote debt into the next block.

    Quote goes negative by what positions are worth; once the last position is closed (by the
    account, a liquidation or deleveraging) a loss backed by haircut collateral would leave debt
    that nothing liquidates, and a later fall of the collateral's price would turn it into
    negative equity. So, for every account written in this block that holds no position and owes
    quote, the insurance fund takes over just enough collateral at its haircut value (what equity
    counts it for, so equity is unchanged and the fund keeps the haircut). The fund pays even
    when that takes its quote balance below zero: it then owns collateral worth more than it owes
    (a fund with a negative balance covers no shortfall, so the waterfall goes to deleveraging).

    Debt the collateral cannot cover (its price fell in this very block, say, when a halted
    market was resumed at its reported price) is a deficit like any other: the fund pays what
    it can and the rest is written off as socialized loss, in the open.
    """
    ledger = env.ledger
    g = ledger.g
    events: list[dict[str, Any]] = []
    for address in sorted(ledger.block_accounts):
        account = ledger.block_accounts[address]
        if account.positions or account.quote >= 0:
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
            env.emit(events, event("collateral_conversion", account=address, asset=symbol, amount=amount,
                                   value=value, fund_left=g.insurance))
        if account.quote < 0:
            cover = min(max(0, g.insurance), -account.quote)
            if cover:
                g.insurance -= cover
                account.quote += cover
                env.emit(events, event("insurance_cover", account=address, amount=cover, fund_left=g.insurance))
        if account.quote < 0:
            loss = -account.quote
            account.quote = 0
            g.socialized_loss += loss
            env.emit(events, event("socialized_loss", account=address, amount=loss, total=g.socialized_loss))
    return events
