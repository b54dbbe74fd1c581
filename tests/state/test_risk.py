"""Margin, oracle, funding, dynamic IMF and partial liquidation: pure cores and through the app."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from state import builders, queries
from state.codes import Code
from state.model import PPM
from state.risk import capped_price, margin_allows, next_volatility, weighted_median
from tests.state.helpers import USDC, Chain, make_genesis, signer

BTC = "BTC-PERP"
P = 500_000


@given(st.lists(st.tuples(st.integers(1, 10**9), st.integers(1, 100)), min_size=1, max_size=30))
def test_weighted_median_has_half_the_power_on_each_side(reports) -> None:
    median = weighted_median(reports)
    total = sum(p for _, p in reports)
    assert 2 * sum(p for x, p in reports if x <= median) >= total
    assert 2 * sum(p for x, p in reports if x < median) < total
    assert weighted_median(list(reversed(reports))) == median


@given(st.integers(1, 10**12), st.integers(1, 10**12), st.integers(1, 500_000))
def test_move_cap_bounds_the_change(previous, proposed, cap) -> None:
    new = capped_price(previous, proposed, cap)
    assert new >= 1
    assert abs(new - previous) * PPM <= max(previous * cap, PPM)  # the cap, or one unit for tiny prices
    if abs(proposed - previous) * PPM <= previous * cap - previous:  # well inside: unchanged
        assert new == proposed
    if proposed != previous and (proposed >= 1):  # every price can move toward its reports
        assert new != previous


@given(st.integers(0, 10**6), st.integers(1, 10**9), st.integers(1, 10**9), st.integers(1, PPM))
def test_volatility_ewma_stays_between_old_value_and_new_return(ewma, previous, price, alpha) -> None:
    ret = abs(price - previous) * PPM // previous
    new = next_volatility(ewma, previous, price, alpha)
    assert min(ewma, ret) - 1 <= new <= max(ewma, ret)


def test_margin_allows_risk_reduction_when_undercollateralised() -> None:
    assert margin_allows((100, 200, 100), (150, 150, 80))  # IM holds after
    assert margin_allows((50, 200, 100), (40, 150, 80))  # 40/80 >= 50/100 and MMR falls
    assert not margin_allows((50, 200, 100), (30, 150, 80))  # ratio falls
    assert not margin_allows((50, 200, 100), (60, 250, 120))  # MMR rises


def funded(**overrides) -> Chain:
    return Chain(make_genesis(balances={"alice": 10_000 * USDC, "bob": 10_000 * USDC, "venue": 100 * USDC,
                                        "bs": 1_000_000 * USDC}, **overrides))


def trade(chain: Chain, buyer: str, seller: str, size: int, price: int = P, oid: int = 1):
    return chain.trade(signer("venue"), chain.order(signer(buyer), BTC, "buy", size, price, oid),
                       chain.order(signer(seller), BTC, "sell", size, price, oid), size, price)


def test_undercollateralised_account_may_reduce_but_not_add() -> None:
    chain = funded()
    assert chain.one(trade(chain, "alice", "bob", 180_000)).ok  # 1.8 BTC = $90k on $10k: ~9x
    chain.block(chain.prices({BTC: 460_000}))
    chain.block()  # alice: equity ~2,800 < IMR 4,140 but > MMR 2,484
    health = queries.account_health(chain.app, signer("alice").address)
    assert health["maintenance_margin"] < health["equity"] < health["initial_margin"]
    assert Code(chain.one(trade(chain, "alice", "bob", 10_000, 460_000, 2)).code) == Code.INSUFFICIENT_MARGIN
    assert chain.one(trade(chain, "bob", "alice", 50_000, 460_000, 3)).ok


def test_partial_liquidation_restores_initial_margin_against_the_backstop() -> None:
    chain = funded()
    cid, fee = chain.cid(), chain.fee()
    chain.block([builders.build_backstop_tx(signer("bs"), cid, BTC, 1_000_000, 5_000, fee=fee, expiry=50)])
    assert chain.one(trade(chain, "alice", "bob", 180_000)).ok
    for price in (475_000, 455_000):
        chain.block(chain.prices({BTC: price}))
    chain.block()
    kinds = [e["type"] for e in chain.end_events]
    assert kinds[:2] == ["liquidation", "liquidation_fill"] and "deleverage" not in kinds
    left = queries.positions(chain.app, signer("alice").address)
    assert left and 0 < left[0]["size"] < 180_000  # partially closed
    health = queries.account_health(chain.app, signer("alice").address)
    assert health["equity"] >= health["initial_margin"]
    fill = next(e for e in chain.end_events if e["type"] == "liquidation_fill")["attrs"]
    assert fill["cash"] == -fill["size"] * 455_000 * (PPM - 5_000) // PPM  # oracle minus the discount


def test_funding_moves_quote_from_longs_to_shorts_when_trades_print_above_the_oracle() -> None:
    chain = funded(market_funding_interval_ms=5_000)
    assert chain.one(trade(chain, "alice", "bob", 10_000, 501_000)).ok  # premium 0.2% (clamped to 0.1%)
    before = {n: queries.account_health(chain.app, signer(n).address)["equity"] for n in ("alice", "bob")}
    chain.block(dt_ms=5_000)
    market = queries.market(chain.app, BTC)
    assert market["last_funding_rate_ppm"] == 1000  # the clamp
    paid = 10_000 * P * 1000 // PPM  # 0.1% of $5,000 = 5 USDC
    after = {n: queries.account_health(chain.app, signer(n).address)["equity"] for n in ("alice", "bob")}
    assert after["alice"] == before["alice"] - paid and after["bob"] == before["bob"] + paid
    assert queries.positions(chain.app, signer("alice").address)[0]["pending_funding"] == -paid
    # settles lazily: the next touch moves it into quote, equity unchanged
    chain.one(builders.build_transfer_tx(signer("alice"), chain.cid(), signer("bob").address, "USDC", 1,
                                         fee=chain.fee(), expiry=chain.expiry()))
    assert queries.positions(chain.app, signer("alice").address)[0]["pending_funding"] == 0


def test_initial_margin_rises_with_open_interest_and_volatility() -> None:
    chain = funded(market_oi_lower_cap=1_000 * USDC, market_oi_upper_cap=11_000 * USDC)
    assert chain.one(trade(chain, "alice", "bob", 12_000)).ok  # OI $6,000: halfway between the caps
    chain.block()
    base = 50_000
    assert queries.market(chain.app, BTC)["initial_margin_ppm"] == base + (PPM - base) // 2
    calm = funded()
    for price in (505_000, 495_000, 505_000):
        calm.block(calm.prices({BTC: price}))
    calm.block()
    market = queries.market(calm.app, BTC)
    assert market["volatility_ewma_ppm"] > 0 and market["initial_margin_ppm"] > base


def test_collateral_backs_positions_at_its_haircut_value() -> None:
    chain = funded()
    for v in range(3):
        chain.block([builders.build_deposit_tx(signer(f"v{v}"), chain.cid(), "btc-tx-1", signer("carol").address,
                                               "BTC", 10**8, fee=chain.fee(), expiry=chain.expiry())])
    assert queries.account_health(chain.app, signer("carol").address)["equity"] == 45_000 * USDC
    assert chain.one(trade(chain, "carol", "bob", 100_000)).ok  # long 1 BTC on BTC collateral
    chain.block(chain.prices({BTC: 475_000}))
    chain.block()
    # collateral and position both lost 5%: 0.9 * 2,500 + 2,500, and the 1 bp maker fee
    equity = queries.account_health(chain.app, signer("carol").address)["equity"]
    assert equity == 45_000 * USDC - 2_250 * USDC - 2_500 * USDC - 5 * USDC


def test_check_margin_what_if_and_query_shapes() -> None:
    chain = funded()
    alice = signer("alice").address
    ok = queries.check_margin(chain.app, alice, {"market": BTC, "side": "buy", "size": 100_000, "price": P})
    assert ok["allowed"] and ok["after"]["position"] == 100_000
    too_big = queries.check_margin(chain.app, alice, {"market": BTC, "side": "buy", "size": 10**7, "price": P})
    assert not too_big["allowed"]
    assert not queries.check_margin(chain.app, alice, {"market": "X", "side": "buy", "size": 1})["allowed"]
    account = queries.account(chain.app, alice)
    assert account["quote"] == 10_000 * USDC and account["replay"]["max_expiry"] == 1 + 1000
    assert queries.account(chain.app, signer("nobody").address) is None
    assert [m["id"] for m in queries.markets(chain.app)] == [BTC, "ETH-PERP", "SOL-PERP"]
    assert queries.prices(chain.app)[BTC]["price"] == P
    assert queries.insurance_fund(chain.app)["insurance_fund"] == 1_000_000 * USDC
    assert queries.liquidations(chain.app, 0, 10) == {"items": [], "total": 0, "total_exact": True}


def test_funding_rounding_is_kept_by_the_system_and_swept_to_the_fund() -> None:
    chain = funded(market_funding_interval_ms=2_000, market_funding_impact_notional=1)
    chain.block(chain.prices({BTC: 500_003}))
    chain.block()
    chain.one(trade(chain, "alice", "bob", 10, 500_010))  # premium 13 ppm on a tiny position
    fund = queries.insurance_fund(chain.app)["insurance_fund"]
    chain.block(dt_ms=2_000)
    assert queries.market(chain.app, BTC)["last_funding_rate_ppm"] == 13
    for name, other in (("alice", "bob"), ("bob", "alice")):  # touch both: each settles, rounded down
        chain.one(builders.build_transfer_tx(signer(name), chain.cid(), signer(other).address, "USDC", 1,
                                             fee=chain.fee(), expiry=chain.expiry()))
    chain.block()
    # the long owes 65.00039 and pays 66; the short is owed 65.00039 and gets 65: 1 micro-unit to the fund
    assert queries.insurance_fund(chain.app)["insurance_fund"] == fund + 1
    assert queries.market(chain.app, BTC)["funding_dust_scaled"] == 0


def test_debt_left_without_positions_is_covered_by_collateral_taken_over_by_the_fund() -> None:
    chain = funded()
    for v in range(3):
        chain.block([builders.build_deposit_tx(signer(f"v{v}"), chain.cid(), "btc-1", signer("carol").address,
                                               "BTC", 10**8, fee=chain.fee(), expiry=chain.expiry())])
    assert chain.one(trade(chain, "carol", "bob", 100_000)).ok  # long 1 BTC on 1 BTC of collateral
    chain.block(chain.prices({BTC: 475_000}))
    chain.block()
    close = chain.trade(signer("venue"), chain.order(signer("bob"), BTC, "buy", 100_000, 475_000, 2),
                        chain.order(signer("carol"), BTC, "sell", 100_000, 475_000, 2), 100_000, 475_000)
    fund = queries.insurance_fund(chain.app)["insurance_fund"]
    result = chain.one(close)
    assert result.ok
    conversion = next(e for e in chain.end_events if e["type"] == "collateral_conversion")["attrs"]
    carol = queries.account(chain.app, signer("carol").address)
    assert carol["positions"] == [] and carol["quote"] >= 0 and carol["collateral"]["BTC"] < 10**8
    assert conversion["amount"] + carol["collateral"]["BTC"] == 10**8
    funds = queries.insurance_fund(chain.app)
    assert funds["insurance_collateral"] == {"BTC": conversion["amount"]}
    assert funds["insurance_fund"] == fund - conversion["value"]
    for price in (400_000, 330_000, 300_000):  # the collateral crashes; carol owes nothing
        chain.block(chain.prices({BTC: price}))
    assert queries.account_health(chain.app, signer("carol").address)["equity"] > 0
