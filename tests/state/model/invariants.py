"""Model-independent invariants, computed here on the real app's state after every block.

Nothing from ``state.queries`` or ``state.risk``: the arithmetic (equity, funding, collateral
value) is written again from ``state/README.md`` ("Risk engine", "Invariants", "Default waterfall").
"""

from __future__ import annotations

from typing import Any

PPM = 1_000_000


def _ceil(a: int, b: int) -> int:
    return -((-a) // b)


class Valuation:
    """Equity of app ``Account`` objects at the app's applied prices."""

    def __init__(self, genesis: Any) -> None:
        app = genesis.app_state
        self.quote = app.quote.symbol
        self.qdec = app.quote.decimals
        self.assets = {c.symbol: c for c in app.collateral_assets}

    def mult(self, market: Any) -> int:
        p = market.params
        return 10 ** (p.size_exponent + p.price_exponent + self.qdec)

    def collateral(self, markets: dict[str, Any], symbol: str, amount: int) -> int:
        asset = self.assets[symbol]
        market = markets[asset.price_market]
        exponent = market.params.price_exponent - asset.decimals + self.qdec
        return amount * market.price * asset.weight_ppm * 10 ** max(exponent, 0) // (PPM * 10 ** max(-exponent, 0))

    def equity(self, account: Any, markets: dict[str, Any]) -> tuple[int, int]:
        """(equity, MMR)."""
        equity, mmr = account.quote, 0
        for market_id, (size, snapshot, _cost) in account.positions.items():
            market = markets[market_id]
            equity += (-size * (market.funding_index - snapshot)) // PPM
            value = size * market.price * self.mult(market)
            equity += value
            mmr += _ceil(abs(value) * market.params.maintenance_margin_ppm, PPM)
        for symbol, amount in account.collateral.items():
            if amount:
                equity += self.collateral(markets, symbol, amount)
        return equity, mmr


def _attrs(ev: dict[str, Any]) -> dict[str, Any]:
    return ev.get("attrs", ev)


def check(app: Any, genesis: Any, before: dict[bytes, Any], events: list[dict[str, Any]],
          names: dict[bytes, str]) -> list[str]:
    """Every invariant broken by the app's committed state; ``before`` holds copies of the
    accounts as they were just before ``end_block`` and ``events`` the end_block events."""
    v = Valuation(genesis)
    ledger = app.ledger
    accounts, markets, g = ledger.accounts, ledger.markets, ledger.globals
    quote = v.quote
    problems: list[str] = []

    def name(address: bytes) -> str:
        return names.get(address, address.hex()[:8])

    # conservation of quote (in FUNDING_SCALE units, so unsettled funding is exact)
    held = 0
    for account in accounts.values():
        held += account.quote * PPM
        for market_id, (size, snapshot, _cost) in account.positions.items():
            held += -size * (markets[market_id].funding_index - snapshot)
    held += sum(m.funding_dust for m in markets.values())
    held += (g.insurance + g.fee_pool) * PPM
    owed = (g.deposits.get(quote, 0) - g.withdrawals.get(quote, 0) + g.socialized_loss) * PPM
    if held != owed:
        problems.append(f"quote not conserved: held {held / PPM} != deposits - withdrawals + socialized {owed / PPM}")
    # conservation of each collateral asset
    for symbol in v.assets:
        held_c = sum(a.collateral.get(symbol, 0) for a in accounts.values()) + g.insurance_collateral.get(symbol, 0)
        owed_c = g.deposits.get(symbol, 0) - g.withdrawals.get(symbol, 0)
        if held_c != owed_c:
            problems.append(f"{symbol} not conserved: held {held_c} != {owed_c}")
    # zero-sum sizes, open interest = long sizes
    for market_id, market in markets.items():
        sizes = [a.positions[market_id][0] for a in accounts.values() if market_id in a.positions]
        if sum(sizes) != 0:
            problems.append(f"{market_id}: sizes sum to {sum(sizes)}")
        longs = sum(s for s in sizes if s > 0)
        if longs != market.open_interest:
            problems.append(f"{market_id}: open interest {market.open_interest} != long sizes {longs}")
    equities = {}
    for address, account in accounts.items():
        equity, _mmr = v.equity(account, markets)
        equities[address] = equity
        if equity < 0:
            problems.append(f"{name(address)}: negative equity {equity} after end_block")
        if account.quote < 0 and not account.positions:
            problems.append(f"{name(address)}: owes {account.quote} quote with no position")
    if g.fee_pool < 0:
        problems.append(f"fee pool negative: {g.fee_pool}")
    if g.insurance < 0 and not any(g.insurance_collateral.values()):
        problems.append(f"insurance fund negative ({g.insurance}) holding no collateral")

    # the waterfall, from its events
    counterparties = set()
    for ev in events:
        a = _attrs(ev)
        if ev.get("type") in ("deleverage", "liquidation_fill"):
            other = a.get("counterparty") or a.get("provider")
            if other is not None:
                counterparties.add(other)
    for ev in events:
        a = _attrs(ev)
        if ev.get("type") != "deleverage":
            continue
        other, defaulter, market_id = a.get("counterparty"), a.get("account"), a.get("market")
        if other is not None and equities.get(other, 0) < 0:
            problems.append(f"deleveraged counterparty {name(other)} left with negative equity {equities[other]}")
        charge = a.get("charge", 0) or 0
        if charge > 0 and defaulter in before and market_id is not None:
            position = before[defaulter].positions.get(market_id)
            market = markets[market_id]
            loss = 0 if position is None else position[2] - position[0] * market.price * v.mult(market)
            if loss <= 0 and defaulter not in counterparties:
                problems.append(f"deleverage charge {charge} to {name(other)} in {market_id}, where the defaulter "
                                f"{name(defaulter)} had no loss ({loss})")
    # a solvent liquidated account loses at most its liquidation fee
    fee_ppm = g.risk.liquidation_fee_ppm
    closed: dict[bytes, int] = {}
    passes: dict[bytes, int] = {}
    for ev in events:
        a = _attrs(ev)
        kind = ev.get("type")
        if kind == "liquidation":
            passes[a.get("account")] = passes.get(a.get("account"), 0) + 1
        if kind in ("liquidation_fill", "deleverage") and a.get("market") in markets:
            market = markets[a["market"]]
            closed[a["account"]] = closed.get(a["account"], 0) + abs(a.get("size", 0)) * market.price * v.mult(market)
    for address in passes:
        if address not in before or address in counterparties:
            continue
        equity_before, _mmr = v.equity(before[address], markets)
        if equity_before <= 0:
            continue
        account = accounts.get(address)
        equity_after = v.equity(account, markets)[0] if account is not None else 0
        bound = _ceil(closed.get(address, 0) * fee_ppm, PPM) + 1  # +1: a second pass rounds its fee up again
        if equity_before - equity_after > bound:
            problems.append(f"solvent {name(address)} lost {equity_before - equity_after} in its liquidation, more "
                            f"than its fee bound {bound} (equity {equity_before} -> {equity_after})")
    return problems
