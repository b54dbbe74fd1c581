"""Read-only queries for RPC (plain dicts of ints, strings and bytes) and the invariant checker.

Queries read the last committed state only, never the block being executed. Addresses come in as
20 raw bytes and go out as raw bytes (RPC renders them).

Amounts stay integers; each answer also says how to show them (``state.genesis`` derives the
places): markets and positions carry ``size_decimals``, ``price_decimals`` and ``quote_decimals``
(and their base and quote assets); account and insurance fund carry ``quote_asset`` and
``decimals`` (places per asset), health ``quote_asset`` and ``quote_decimals``, prices
``price_decimals``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from primitives.codec import decode
from state.model import FUNDING_SCALE, PPM, Account, Market, event_key, order_key, prefix_end
from state.order_records import JOURNAL_PREFIX, OrderRecords
from state.risk import ceil_div, margin_allows, pending_funding, risk_of
from state.txs import SIDES

if TYPE_CHECKING:
    from state.app import ClearingApp


def _market_view(app: ClearingApp, market: Market) -> dict[str, Any]:
    p = market.params
    return {
        "id": p.id, "base_asset": p.base_asset, "status": app.market_status(market),
        "quote_asset": app.ledger.quote_symbol, "size_decimals": p.size_decimals,
        "price_decimals": p.price_decimals, "quote_decimals": app.ledger.quote_decimals,
        "oracle_price": market.price, "price_exponent": p.price_exponent, "size_exponent": p.size_exponent,
        "lot_size": p.lot_size, "tick_size": p.tick_size, "value_multiplier": p.value_multiplier,
        "initial_margin_ppm": market.imf_ppm, "base_initial_margin_ppm": p.initial_margin_ppm,
        "maintenance_margin_ppm": p.maintenance_margin_ppm, "open_interest": market.open_interest,
        "funding_index": market.funding_index, "last_funding_rate_ppm": market.last_rate_ppm,
        "next_funding_ms": market.next_funding_ms, "volatility_ewma_ppm": market.vol_ewma_ppm,
        "last_price_ms": market.last_price_ms, "maker_fee_ppm": p.maker_fee_ppm, "taker_fee_ppm": p.taker_fee_ppm,
        "oi_lower_cap": p.oi_lower_cap, "oi_upper_cap": p.oi_upper_cap,
        "funding_interval_ms": p.funding_interval_ms, "funding_clamp_ppm": p.funding_clamp_ppm,
        "funding_dust_scaled": market.funding_dust, "funding_scale": FUNDING_SCALE,
        "funding_impact_notional": p.funding_impact_notional,
        "breaker": market.breaker, "reported_price": market.reported, "capped_blocks": market.capped_blocks,
    }


def positions(app: ClearingApp, address: bytes) -> list[dict[str, Any]]:
    account = app.ledger.accounts.get(address) or Account()
    out = []
    for market_id in sorted(account.positions):
        size, snapshot, cost = account.positions[market_id]
        market = app.ledger.markets[market_id]
        value = size * market.price * market.params.value_multiplier
        out.append({
            "market": market_id, "size": size, "oracle_price": market.price, "value": value,
            "cost": cost, "unrealized_pnl": value - cost,
            "pending_funding": pending_funding(size, snapshot, market.funding_index) // FUNDING_SCALE,
            "pending_funding_scaled": pending_funding(size, snapshot, market.funding_index),
            "base_asset": market.params.base_asset, "quote_asset": app.ledger.quote_symbol,
            "size_decimals": market.params.size_decimals, "price_decimals": market.params.price_decimals,
            "quote_decimals": app.ledger.quote_decimals,
        })
    return out


def account(app: ClearingApp, address: bytes) -> dict[str, Any] | None:
    acct = app.ledger.accounts.get(address)
    if acct is None:
        return None
    g = app.ledger.globals
    next_height = app.last_height + 1
    return {
        "address": address, "quote": acct.quote, "collateral": dict(sorted(acct.collateral.items())),
        **_asset_units(app),
        "positions": positions(app, address), "health": account_health(app, address),
        "replay": {"next_height": next_height, "max_expiry": next_height + g.replay_window,
                   "replay_window_blocks": g.replay_window, "min_tx_fee": g.min_tx_fee},
    }


def account_health(app: ClearingApp, address: bytes) -> dict[str, Any]:
    ledger = app.ledger
    acct = ledger.accounts.get(address) or Account()
    equity, imr, mmr = risk_of(acct, ledger.markets, ledger.pricing)
    return {
        "equity": equity, "initial_margin": imr, "maintenance_margin": mmr,
        "free_collateral": equity - imr, "liquidatable": mmr > 0 and equity < mmr,
        "distance_to_liquidation": equity - mmr,
        "margin_ratio_ppm": equity * PPM // mmr if mmr else None,
        "quote_asset": ledger.quote_symbol, "quote_decimals": ledger.quote_decimals,
    }


def assets(app: ClearingApp) -> dict[str, Any]:
    """The quote asset and the collateral assets with their symbols and decimals (from genesis),
    so a client can show amounts in human units without reading the whole genesis."""
    app_state = app.genesis.app_state
    return {
        "quote": {"symbol": app_state.quote.symbol, "decimals": app_state.quote.decimals},
        "collateral": [{"symbol": c.symbol, "decimals": c.decimals, "price_market": c.price_market,
                        "weight_ppm": c.weight_ppm} for c in app_state.collateral_assets],
    }


def markets(app: ClearingApp) -> list[dict[str, Any]]:
    return [_market_view(app, app.ledger.markets[m]) for m in sorted(app.ledger.markets)]


def market(app: ClearingApp, market_id: str) -> dict[str, Any] | None:
    m = app.ledger.markets.get(market_id)
    return None if m is None else _market_view(app, m)


def prices(app: ClearingApp) -> dict[str, Any]:
    return {m: {"price": mk.price, "price_exponent": mk.params.price_exponent,
                "price_decimals": mk.params.price_decimals, "status": app.market_status(mk),
                "last_price_ms": mk.last_price_ms, "reported_price": mk.reported, "breaker": mk.breaker,
                "capped_blocks": mk.capped_blocks}
            for m, mk in sorted(app.ledger.markets.items())}


def insurance_fund(app: ClearingApp) -> dict[str, Any]:
    g = app.ledger.globals
    return {"insurance_fund": g.insurance, "insurance_collateral": dict(sorted(g.insurance_collateral.items())),
            "fee_pool": g.fee_pool, "socialized_loss": g.socialized_loss, "deposits": dict(g.deposits),
            "withdrawals": dict(g.withdrawals), "withdrawal_seq": g.withdrawal_seq, **_asset_units(app)}


def _asset_units(app: ClearingApp) -> dict[str, Any]:
    """How to show asset amounts: the quote asset's symbol and every asset's places."""
    return {"quote_asset": app.ledger.quote_symbol, "decimals": app.genesis.app_state.asset_decimals()}


LIQUIDATIONS_COUNTED_BEYOND_PAGE = 10_000


def liquidations(app: ClearingApp, min_height: int, max_height: int, offset: int = 0,
                 limit: int = 100, counted_beyond: int = LIQUIDATIONS_COUNTED_BEYOND_PAGE) -> dict[str, Any]:
    """Waterfall events (liquidation, fills, insurance, deleveraging) in a height range, oldest first.

    ``total`` counts at most ``counted_beyond`` events past the page (``total_exact`` is False
    when the range holds more), so a request costs its page, not the whole event log.
    """
    items, total, exact = [], 0, True
    stop = offset + limit + counted_beyond
    for key, value in app.store.iterate(event_key(max(0, min_height), 0), event_key(max_height + 1, 0)):
        if total == stop:
            exact = False
            break
        if total >= offset and len(items) < limit:
            items.append(logged_event(key, value))
        total += 1
    return {"items": items, "total": total, "total_exact": exact}


AT_RISK_SCAN = 200
"""Fewest index candidates ranked exactly per request: a page is ordered by the exact margin
ratio among at least this many of the accounts the liquidation index puts nearest."""
AT_RISK_MAX_DEPTH = 1_000
"""Deepest entry (offset + limit) a page may reach: the ranking costs one margin evaluation
per candidate (~3 us each), so a request stays a few milliseconds with 100k accounts."""


def accounts_at_risk(app: ClearingApp, offset: int = 0, limit: int = 10) -> dict[str, Any]:
    """The accounts nearest to liquidation, nearest first, from the node's liquidation index.

    The index (``state/waterfall.py``) orders accounts with positions by a lower bound of the
    price drift they can take; the ``max(offset + limit, AT_RISK_SCAN)`` it puts first are
    evaluated exactly and ranked by margin ratio (equity / maintenance margin), then by address.
    ``distance_ppm`` is the share of equity that can be lost before equity reaches maintenance
    margin (0 when liquidatable). ``index_ready`` is False until the index is first built (the
    first block after the node opens); the list is then empty.

    Raises ValueError if ``offset + limit`` exceeds :data:`AT_RISK_MAX_DEPTH` or either is negative.
    """
    if offset < 0 or limit < 0 or offset + limit > AT_RISK_MAX_DEPTH:
        raise ValueError(f"offset + limit must be within 0..{AT_RISK_MAX_DEPTH}")
    index = app.liquidations
    ledger = app.ledger
    ranked = []
    if not index.stale:
        for address in index.nearest(max(offset + limit, AT_RISK_SCAN)):
            acct = ledger.accounts.get(address)
            if acct is None or not acct.positions:
                continue
            equity, imr, mmr = risk_of(acct, ledger.markets, ledger.pricing)
            if mmr <= 0:
                continue
            ranked.append((equity * PPM // mmr, address, equity, imr, mmr, len(acct.positions)))
    ranked.sort(key=lambda row: (row[0], row[1]))
    items = [{
        "address": address, "equity": equity, "initial_margin": imr, "maintenance_margin": mmr,
        "margin_ratio_ppm": ratio, "liquidatable": equity < mmr,
        "distance_ppm": max(0, (equity - mmr) * PPM // equity) if equity > 0 else 0,
        "positions": count,
    } for ratio, address, equity, imr, mmr, count in ranked[offset:offset + limit]]
    return {"items": items, "indexed": len(index.keys), "index_ready": not index.stale}
def logged_event(key: bytes, value: bytes) -> dict[str, Any]:
    """One logged waterfall event (``e/<height><index>``) as queries list it: with its height."""
    item = decode(value)
    item["height"] = int.from_bytes(key[2:10], "big")
    return item


def withdrawal(app: ClearingApp, seq: int) -> dict[str, Any] | None:
    from state.model import withdrawal_key

    raw = app.store.get(withdrawal_key(seq))
    return None if raw is None else decode(raw)


def order(app: ClearingApp, address: bytes, order_id: int) -> dict[str, Any] | None:
    record = app.orders.get(order_key(address, order_id))
    if record is None:
        return None
    order_hash, filled, cancelled, expiry = record
    return {"hash": order_hash, "filled": filled, "cancelled": bool(cancelled), "expiry": expiry}


def check_margin(app: ClearingApp, address: bytes, order: dict[str, Any]) -> dict[str, Any]:
    """What-if: would filling ``order`` (market, side, size, price) pass the margin check now?"""
    ledger = app.ledger
    mk = ledger.markets.get(order.get("market", ""))
    if mk is None:
        return {"allowed": False, "reason": "unknown market"}
    side = SIDES.get(order.get("side", ""))
    size, price = order.get("size"), order.get("price", mk.price)
    if side is None or type(size) is not int or size <= 0 or type(price) is not int or price <= 0:
        return {"allowed": False, "reason": "order needs side buy|sell and positive integer size and price"}
    acct = ledger.accounts.get(address) or Account()
    held = acct.positions[mk.params.id][0] if mk.params.id in acct.positions else 0
    notional = size * price * mk.params.value_multiplier
    fee = ceil_div(notional * mk.params.taker_fee_ppm, PPM)
    before = risk_of(acct, ledger.markets, ledger.pricing)
    after = risk_of(acct, ledger.markets, ledger.pricing, (mk.params.id, held + side * size, -side * notional - fee))
    allowed = margin_allows(before, after)
    return {"allowed": allowed, "reason": "" if allowed else "insufficient margin",
            "before": {"equity": before[0], "initial_margin": before[1], "maintenance_margin": before[2]},
            "after": {"equity": after[0], "initial_margin": after[1], "maintenance_margin": after[2],
                      "position": held + side * size}, "fee": fee}


def invariants(app: ClearingApp) -> list[str]:
    """Problems with the committed state (empty when sound). O(accounts): tests and audits only.

    - per market, sizes sum to zero and open interest is the sum of long sizes;
    - quote held by accounts (plus exact unsettled funding and the funding rounding kept by the
      system), the insurance fund and the fee pool equals deposits minus withdrawals plus the
      socialized loss (deficits written off);
    - collateral held by accounts and the insurance fund equals deposits minus withdrawals;
    - no account has negative equity, nor owes quote with no position; the fee pool is not negative, nor the fund unless it holds
      collateral taken over for debts;
    - the in-memory replay index (``seen_buckets``, what duplicate checks read) holds exactly the
      stored tx hashes with their expiries;
    - the orders' fill records in memory (``orders``, what fills read) are exactly those the
      stored journal entries give (``OrderRecords.rebuild``), held by the same entries.
    """
    ledger = app.ledger
    g = ledger.globals
    problems: list[str] = []
    sizes = {m: 0 for m in ledger.markets}
    longs = {m: 0 for m in ledger.markets}
    holders: dict[str, set[bytes]] = {m: set() for m in ledger.markets}
    quote_scaled = 0
    collateral: dict[str, int] = {}
    for address, acct in ledger.accounts.items():
        quote_scaled += acct.quote * FUNDING_SCALE
        for market_id, (size, snapshot, _cost) in acct.positions.items():
            if size == 0:
                problems.append(f"account {address.hex()} holds an empty position in {market_id}")
            sizes[market_id] += size
            longs[market_id] += max(size, 0)
            holders[market_id].add(address)
            quote_scaled += pending_funding(size, snapshot, ledger.markets[market_id].funding_index)
        for symbol, amount in acct.collateral.items():
            if amount < 0:
                problems.append(f"account {address.hex()} holds negative {symbol}")
            collateral[symbol] = collateral.get(symbol, 0) + amount
        equity, _imr, _mmr = risk_of(acct, ledger.markets, ledger.pricing)
        if equity < 0:
            problems.append(f"account {address.hex()} has negative equity {equity}")
        if acct.quote < 0 and not acct.positions:
            problems.append(f"account {address.hex()} owes {-acct.quote} quote with no position")
    for market_id, mk in ledger.markets.items():
        if sizes[market_id]:
            problems.append(f"sizes in {market_id} sum to {sizes[market_id]}, not 0")
        if longs[market_id] != mk.open_interest:
            problems.append(f"open interest of {market_id} is {mk.open_interest}, longs hold {longs[market_id]}")
        if holders[market_id] != ledger.holders.get(market_id, set()):
            problems.append(f"holder index of {market_id} is out of date")
        quote_scaled += mk.funding_dust
    quote = ledger.quote_symbol
    expected = (g.deposits.get(quote, 0) - g.withdrawals.get(quote, 0) + g.socialized_loss
                - g.insurance - g.fee_pool)
    if quote_scaled != expected * FUNDING_SCALE:
        problems.append(f"quote is not conserved: accounts hold {quote_scaled} / {FUNDING_SCALE}, expected {expected}")
    for symbol in ledger.pricing:
        held = collateral.get(symbol, 0) + g.insurance_collateral.get(symbol, 0)
        if held != g.deposits.get(symbol, 0) - g.withdrawals.get(symbol, 0):
            problems.append(f"{symbol} is not conserved: accounts hold {held}")
    if g.fee_pool < 0:
        problems.append(f"fee pool {g.fee_pool} is negative")
    if g.insurance < 0 and not any(g.insurance_collateral.values()):
        problems.append(f"insurance fund {g.insurance} is negative and holds no collateral")
    remembered = {(key[2:], decode(value)) for key, value in app.store.iterate(b"t/", prefix_end(b"t/"))}
    indexed = {(tx_hash, expiry) for expiry, hashes in app.seen_buckets.items() for tx_hash in hashes}
    if remembered != indexed:
        problems.append(f"replay index differs from the stored tx hashes ({len(indexed)} vs {len(remembered)})")
    journal = [(int.from_bytes(key[len(JOURNAL_PREFIX):], "big"), decode(value))
               for key, value in app.store.iterate(JOURNAL_PREFIX, prefix_end(JOURNAL_PREFIX))]
    stored = OrderRecords.rebuild(journal, app.store.version)
    if stored.current() != app.orders.current() or stored.live_counts() != app.orders.live_counts():
        problems.append(f"order records differ from the stored journal ({len(app.orders)} vs {len(stored)})")
    return problems
