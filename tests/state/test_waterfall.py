"""The default waterfall (state/README.md, "Default waterfall"): audit findings 1-3 and (f).

Every expected number is worked out by hand from the README's rules, in the test. Units: BTC-PERP
and ETH-PERP both have value_multiplier 1, so ``size * price`` is micro-USDC (1 BTC = 100_000 size
units, $1 = 10 price units; 1 ETH = 10_000 size units, $1 = 100 price units).
"""

from __future__ import annotations

from state import builders
from state.codes import Code
from state.model import Account
from state.queries import invariants
from tests.state.helpers import USDC, Chain, make_genesis, signer

BTC, ETH = "BTC-PERP", "ETH-PERP"
PPM = 1_000_000
FEE_PPM = 10_000  # genesis liquidation_fee_ppm


def ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def addr(name: str) -> bytes:
    return signer(name).address


def account(chain: Chain, name: str):
    """The committed account (an empty one is not stored)."""
    return chain.app.ledger.accounts.get(addr(name)) or Account()


def quote(chain: Chain, name: str) -> int:
    return account(chain, name).quote


def size(chain: Chain, name: str, market: str) -> int:
    pos = account(chain, name).positions.get(market)
    return 0 if pos is None else pos[0]


def equity(chain: Chain, name: str) -> int:
    """quote + sum(size * price * mult): no collateral, and no funding interval elapses in these tests."""
    acct = account(chain, name)
    markets = chain.app.ledger.markets
    return acct.quote + sum(s * markets[m].price * markets[m].params.value_multiplier
                            for m, (s, _snap, _cost) in acct.positions.items())


def fill(chain: Chain, market: str, buyer: str, seller: str, qty: int, price: int, oid: int) -> bytes:
    return chain.trade(signer("venue"), chain.order(signer(buyer), market, "buy", qty, price, oid),
                       chain.order(signer(seller), market, "sell", qty, price, oid), qty, price)


def events_of(chain: Chain, kind: str, who: str | None = None) -> list[dict]:
    return [e["attrs"] for e in chain.end_events
            if e["type"] == kind and (who is None or e["attrs"].get("account") == addr(who))]


def kinds_for(chain: Chain, who: str) -> list[str]:
    return [e["type"] for e in chain.end_events if e["attrs"].get("account") == addr(who)]


# --- finding 1: a bystander in another market pays for nothing ------------------------------------


def _cross_market_default(fund_seed: int | None) -> Chain:
    """L: long 100 ETH at 3,000 (from E) and 0.1 BTC at 50,000 (from S). Then ETH -50% in one step."""
    overrides = {"max_price_move_ppm": 500_000}
    if fund_seed is not None:
        overrides["insurance_fund_seed"] = fund_seed
    chain = Chain(make_genesis(balances={"L": 20_000 * USDC, "S": 10_000 * USDC, "E": 200_000 * USDC,
                                         "venue": 100 * USDC}, **overrides))
    results = chain.block([fill(chain, ETH, "L", "E", 1_000_000, 300_000, 1),
                           fill(chain, BTC, "L", "S", 10_000, 500_000, 2)])
    assert all(r.ok for r in results), [r.log for r in results]
    chain.block(chain.prices({ETH: 150_000, BTC: 500_000}))  # applied at the next begin_block
    return chain


def test_cross_market_default_is_paid_by_the_fund_and_leaves_the_btc_bystander_untouched() -> None:
    chain = _cross_market_default(None)  # the genesis fund: 1,000,000 USDC
    fund = chain.app.ledger.globals.insurance
    assert fund == 1_000_000 * USDC
    s_quote = quote(chain, "S")
    e_equity_at_crash = quote(chain, "E") + (-1_000_000) * 150_000
    # L's equity at the crash: quote + 100 ETH at 1,500 + 0.1 BTC at 50,000 (~ -130,000 USDC)
    deficit = -(quote(chain, "L") + 1_000_000 * 150_000 + 10_000 * 500_000)
    assert 129_000 * USDC < deficit < 131_000 * USDC
    chain.block()
    assert chain.app.ledger.markets[ETH].price == 150_000
    # S's short is not in profit (sold at 50,000, BTC still 50,000): never deleveraged, never charged
    assert [d for d in events_of(chain, "deleverage", "L") if d["counterparty"] == addr("S")] == []
    assert quote(chain, "S") == s_quote
    assert size(chain, "S", BTC) == -10_000
    # the fund pays L's whole deficit (no fee: L's equity is negative)
    covers = events_of(chain, "insurance_cover", "L")
    assert sum(c["amount"] for c in covers) == deficit
    assert chain.app.ledger.globals.insurance == fund - deficit
    # E (the ETH short, in profit) takes L's ETH at the oracle price: its equity does not move
    assert size(chain, "E", ETH) == 0
    assert equity(chain, "E") == e_equity_at_crash
    assert all(d.get("charge") == 0 for d in events_of(chain, "deleverage", "L"))
    assert size(chain, "L", ETH) == 0 and equity(chain, "L") >= 0


def test_with_an_empty_fund_the_loss_goes_only_to_same_market_winners_then_is_socialized() -> None:
    """E shorts 100 ETH at 3,000 (to X); ETH rises to 4,000; L buys X's 100 ETH at 4,000 and 0.1 BTC
    from S at 50,000; ETH then falls 50% to 2,000. L's deficit (~130,000) exceeds E's profit
    (100,000): E pays at most its profit, the rest is written off, S (BTC) and X (flat) pay nothing."""
    chain = Chain(make_genesis(balances={"L": 70_000 * USDC, "S": 10_000 * USDC, "E": 200_000 * USDC,
                                         "X": 200_000 * USDC, "venue": 100 * USDC},
                               max_price_move_ppm=500_000, insurance_fund_seed=0))
    results = chain.block([fill(chain, ETH, "X", "E", 1_000_000, 300_000, 1),
                           fill(chain, BTC, "L", "S", 10_000, 500_000, 2)])
    assert all(r.ok for r in results), [r.log for r in results]
    chain.block(chain.prices({ETH: 400_000, BTC: 500_000}))
    chain.block()
    assert chain.app.ledger.markets[ETH].price == 400_000
    result = chain.one(fill(chain, ETH, "L", "X", 1_000_000, 400_000, 3))
    assert result.ok, result.log
    chain.block(chain.prices({ETH: 200_000, BTC: 500_000}))
    assert chain.app.ledger.globals.insurance == 0
    s_quote, x_quote, e_equity = quote(chain, "S"), quote(chain, "X"), quote(chain, "E") + (-1_000_000) * 200_000
    deficit = -(quote(chain, "L") + 1_000_000 * 200_000 + 10_000 * 500_000)
    # E's profit: pnl = size * P * mult - cost = -1_000_000 * 200_000 - (-300_000 * USDC) = 100,000 USDC
    e_profit = -1_000_000 * 200_000 + 1_000_000 * 300_000
    assert e_profit == 100_000 * USDC and deficit > e_profit
    # L's losses against cost: ETH 400,000 - 200,000 = 200,000 USDC, BTC 0: all of U is ETH's
    chain.block()
    assert chain.app.ledger.markets[ETH].price == 200_000
    # S and X pay nothing, S keeps its BTC short
    assert quote(chain, "S") == s_quote and size(chain, "S", BTC) == -10_000
    assert quote(chain, "X") == x_quote
    deleverages = events_of(chain, "deleverage", "L")
    assert {d["counterparty"] for d in deleverages} == {addr("E")}
    assert all(d["market"] == ETH for d in deleverages)
    # E is charged exactly its profit on what it closed (all of it), never more
    assert sum(d.get("charge", 0) for d in deleverages) == e_profit
    assert size(chain, "E", ETH) == 0
    assert equity(chain, "E") == e_equity - e_profit
    # the rest is written off, visibly
    written_off = deficit - e_profit
    socialized = events_of(chain, "socialized_loss", "L")
    assert [s["amount"] for s in socialized] == [written_off]
    assert getattr(chain.app.ledger.globals, "socialized_loss", 0) == written_off
    assert socialized[0]["total"] == written_off
    # L ends at exactly zero equity (still holding the BTC long nobody in profit can take)
    assert size(chain, "L", ETH) == 0
    assert equity(chain, "L") == 0
    for address in chain.app.ledger.accounts:
        acct = chain.app.ledger.accounts[address]
        markets = chain.app.ledger.markets
        assert acct.quote + sum(s * markets[m].price for m, (s, _a, _b) in acct.positions.items()) >= 0


# --- finding 2: the insurance fund pays before anyone is deleveraged ------------------------------


def test_insurance_fund_pays_a_bankrupt_account_before_deleveraging_charges_anyone() -> None:
    chain = Chain(make_genesis(balances={"alice": 10_000 * USDC, "bob": 100_000 * USDC, "venue": 100 * USDC},
                               max_price_move_ppm=500_000))
    assert chain.one(fill(chain, BTC, "alice", "bob", 180_000, 500_000, 1)).ok  # 1.8 BTC at 50,000
    chain.block(chain.prices({BTC: 350_000}))  # -30% in one step
    fund = chain.app.ledger.globals.insurance
    deficit = -(quote(chain, "alice") + 180_000 * 350_000)  # ~17,000 USDC
    assert 16_900 * USDC < deficit < 17_100 * USDC
    bob_equity = quote(chain, "bob") + (-180_000) * 350_000
    chain.block()
    kinds = kinds_for(chain, "alice")
    assert "insurance_cover" in kinds and "deleverage" in kinds
    assert kinds.index("insurance_cover") < kinds.index("deleverage")
    assert sum(c["amount"] for c in events_of(chain, "insurance_cover", "alice")) == deficit
    assert chain.app.ledger.globals.insurance == fund - deficit
    for d in events_of(chain, "deleverage", "alice"):
        assert d.get("charge") == 0
        assert d["cash"] == -d["size"] * 350_000  # at the oracle price
    assert size(chain, "bob", BTC) == 0
    assert equity(chain, "bob") == bob_equity  # the close at the oracle price moved nothing
    assert size(chain, "alice", BTC) == 0 and quote(chain, "alice") == 0


# --- finding 3: a partial liquidation restores initial margin, once ---------------------------------


def test_partial_liquidation_without_backstops_restores_margin_once_and_costs_at_most_the_fee() -> None:
    chain = Chain(make_genesis(balances={"alice": 10_000 * USDC, "bob": 100_000 * USDC, "venue": 100 * USDC}))
    assert chain.one(fill(chain, BTC, "alice", "bob", 180_000, 500_000, 1)).ok
    chain.block(chain.prices({BTC: 475_000}))
    chain.block(chain.prices({BTC: 455_000}))
    assert chain.app.ledger.markets[BTC].price == 475_000
    before = quote(chain, "alice") + 180_000 * 455_000  # equity at 45,500: ~1,890 USDC
    mmr = ceil_div(180_000 * 455_000 * 30_000, PPM)  # 2,457 USDC
    assert 0 < before < mmr  # solvent, but liquidatable
    chain.block()
    market = chain.app.ledger.markets[BTC]
    assert market.price == 455_000
    assert "liquidation" in kinds_for(chain, "alice")
    left = size(chain, "alice", BTC)
    after = quote(chain, "alice") + left * 455_000
    imr = ceil_div(left * 455_000 * market.imf_ppm, PPM)
    assert left == 0 or after >= imr
    closed = 180_000 - left
    assert closed > 0
    assert before - after <= ceil_div(closed * 455_000 * FEE_PPM, PPM)  # the fee is the whole cost
    for _ in range(2):  # same prices: not liquidated again
        chain.block()
        assert "liquidation" not in kinds_for(chain, "alice")
        assert "deleverage" not in kinds_for(chain, "alice")
        assert size(chain, "alice", BTC) == left


def test_solvent_account_liquidated_against_a_backstop_loses_at_most_the_fee_discount_included() -> None:
    chain = Chain(make_genesis(balances={"alice": 10_000 * USDC, "bob": 100_000 * USDC, "venue": 100 * USDC,
                                         "bs": 1_000_000 * USDC}))
    bs = builders.build_backstop_tx(signer("bs"), chain.cid(), BTC, 1_000_000, 5_000, fee=chain.fee(),
                                    expiry=chain.expiry(), nonce=chain.nonce())
    assert chain.one(bs).ok
    assert chain.one(fill(chain, BTC, "alice", "bob", 180_000, 500_000, 1)).ok
    chain.block(chain.prices({BTC: 475_000}))
    chain.block(chain.prices({BTC: 455_000}))
    before = quote(chain, "alice") + 180_000 * 455_000
    fund = chain.app.ledger.globals.insurance
    chain.block()
    fills = events_of(chain, "liquidation_fill", "alice")
    assert fills and all(f["counterparty"] == addr("bs") for f in fills)
    closed = -sum(f["size"] for f in fills)
    left = size(chain, "alice", BTC)
    assert closed == 180_000 - left > 0
    after = quote(chain, "alice") + left * 455_000
    max_loss = ceil_div(closed * 455_000 * FEE_PPM, PPM)
    assert before - after <= max_loss
    # what the fund gets is the fee net of the backstop's discount (5,000 ppm of the notional)
    discount_cost = closed * 455_000 - sum(f["cash"] for f in fills)
    assert chain.app.ledger.globals.insurance - fund == (before - after) - discount_cost
    imr = ceil_div(left * 455_000 * chain.app.ledger.markets[BTC].imf_ppm, PPM)
    assert left == 0 or after >= imr


def test_backstops_register_at_discounts_up_to_the_liquidation_fee() -> None:
    chain = Chain(make_genesis(balances={"bs": 1_000_000 * USDC}))

    def register(discount: int) -> Code:
        raw = builders.build_backstop_tx(signer("bs"), chain.cid(), BTC, 1_000, discount, fee=chain.fee(),
                                         expiry=chain.expiry(), nonce=chain.nonce())
        return Code(chain.one(raw).code)

    assert register(20_000) == Code.INVALID_BACKSTOP  # above the 10,000 ppm fee (below the 30,000 MMF)
    assert addr("bs") not in chain.app.ledger.backstops.get(BTC, {})
    assert register(FEE_PPM) == Code.OK


# --- (f): no rounding in the defaulter's favour; every micro-unit accounted for ------------------


def _odd_default(fund_seed: int | None) -> tuple[Chain, int]:
    """L long 100 ETH and 1.001 BTC, bought from several odd-sized shorts; both markets crash."""
    overrides = {"max_price_move_ppm": 500_000}
    if fund_seed is not None:
        overrides["insurance_fund_seed"] = fund_seed
    names = {"L": 40_000, "E1": 100_000, "E2": 100_000, "E3": 100_000, "S1": 50_000, "S2": 50_000, "venue": 100}
    chain = Chain(make_genesis(balances={n: v * USDC for n, v in names.items()}, **overrides))
    results = chain.block([
        fill(chain, ETH, "L", "E1", 333_330, 300_010, 1),
        fill(chain, ETH, "L", "E2", 333_330, 300_010, 2),
        fill(chain, ETH, "L", "E3", 333_340, 300_010, 3),
        fill(chain, BTC, "L", "S1", 33_370, 500_010, 4),
        fill(chain, BTC, "L", "S2", 66_740, 500_010, 5),
    ])
    assert all(r.ok for r in results), [r.log for r in results]
    chain.block(chain.prices({ETH: 170_003, BTC: 350_007}))
    deficit = -(quote(chain, "L") + 1_000_000 * 170_003 + 100_110 * 350_007)
    assert deficit > 0
    return chain, deficit


def _conserved(chain: Chain) -> None:
    g = chain.app.ledger.globals
    held = sum(a.quote for a in chain.app.ledger.accounts.values())
    assert held + g.insurance + g.fee_pool == \
        g.deposits["USDC"] - g.withdrawals.get("USDC", 0) + getattr(g, "socialized_loss", 0)


def test_bankrupt_account_ends_at_exactly_zero_when_the_fund_covers_it() -> None:
    chain, deficit = _odd_default(None)
    fund = chain.app.ledger.globals.insurance
    others = {n: quote(chain, n) + size(chain, n, ETH) * 170_003 + size(chain, n, BTC) * 350_007
              for n in ("E1", "E2", "E3", "S1", "S2")}
    chain.block()
    assert account(chain, "L").positions == {}
    assert quote(chain, "L") == 0  # not +1..+3
    assert fund - chain.app.ledger.globals.insurance == deficit  # the fund paid the deficit, no more
    assert sum(c["amount"] for c in events_of(chain, "insurance_cover", "L")) == deficit
    for name, eq in others.items():
        assert equity(chain, name) == eq, name  # closed at the oracle price, charged nothing
    _conserved(chain)


def test_bankrupt_account_with_an_empty_fund_is_made_whole_exactly_by_charges_and_write_off() -> None:
    chain, deficit = _odd_default(0)
    profits = {n: -size(chain, n, m) * (p0 - p1) for n, m, p0, p1 in (
        ("E1", ETH, 300_010, 170_003), ("E2", ETH, 300_010, 170_003), ("E3", ETH, 300_010, 170_003),
        ("S1", BTC, 500_010, 350_007), ("S2", BTC, 500_010, 350_007))}
    others = {n: quote(chain, n) + size(chain, n, ETH) * 170_003 + size(chain, n, BTC) * 350_007 for n in profits}
    chain.block()
    assert account(chain, "L").positions == {}
    assert quote(chain, "L") == 0
    charges: dict[bytes, int] = {}
    for d in events_of(chain, "deleverage", "L"):
        charges[d["counterparty"]] = charges.get(d["counterparty"], 0) + d.get("charge", 0)
    written_off = sum(s["amount"] for s in events_of(chain, "socialized_loss", "L"))
    covered = sum(c["amount"] for c in events_of(chain, "insurance_cover", "L"))
    assert covered + sum(charges.values()) + written_off == deficit  # never more than the deficit
    assert getattr(chain.app.ledger.globals, "socialized_loss", 0) == written_off
    for name, profit in profits.items():
        charge = charges.get(addr(name), 0)
        assert 0 <= charge <= profit, name
        assert equity(chain, name) == others[name] - charge, name
    _conserved(chain)
    assert invariants(chain.app) == []


def _ordered_names(first: str, second: str) -> tuple[str, str]:
    """Two signer names whose addresses sort ``first`` before ``second`` (a suffix is added)."""
    for i in range(100):
        a, b = f"{first}{i}", f"{second}{i}"
        if addr(a) < addr(b):
            return a, b
    raise AssertionError("no ordering found")


def test_a_backstop_that_cannot_carry_a_fill_does_not_stop_one_that_can() -> None:
    """The stop rule weighs fills that would happen: a thin backstop first in line (same discount,
    lower address) whose margin cannot carry the whole position is skipped, and the next one,
    small but well funded, still takes its share (found by the differential fuzz, seed 1840)."""
    thin, rich = _ordered_names("thin", "rich")
    chain = Chain(make_genesis(balances={"a": 3_000 * USDC, "s": 100_000 * USDC, thin: 10 * USDC,
                                         rich: 1_000_000 * USDC, "venue": 1_000 * USDC},
                               insurance_fund_seed=0, max_price_move_ppm=100_000))
    register = [builders.build_backstop_tx(signer(name), chain.cid(), BTC, capacity, FEE_PPM, fee=chain.fee(),
                                           expiry=chain.expiry(), nonce=chain.nonce())
                for name, capacity in ((thin, 100_000), (rich, 10_000))]
    assert all(r.ok for r in chain.block(register))
    assert chain.one(fill(chain, BTC, "a", "s", 100_000, 500_000, 1)).ok  # 1 BTC long at $50,000
    chain.block(chain.prices({BTC: 471_000}))  # reports of block N apply at N+1
    chain.block()
    # a: equity 3,000 - 5 (maker fee) - 2,900 = 95 USDC, above zero and below MMR 1,413: a
    # partial plan, which needs the whole BTC (the move raised the IMF above 10%, relief net of
    # the fee < 4,710 per BTC). thin is first in line at the same 1% discount; its fill (471 USDC
    # of discount) would leave a deficit the empty fund cannot pay, but thin's 10 USDC cannot
    # carry a 1 BTC long: no fill, nothing to weigh.
    fills = events_of(chain, "liquidation_fill", "a")
    assert [(f["counterparty"], f["size"]) for f in fills] == [(addr(rich), -10_000)]
    assert size(chain, rich, BTC) == 10_000 and size(chain, thin, BTC) == 0
    assert size(chain, "a", BTC) == 0  # the rest closed against s, in profit, at the oracle price
    assert invariants(chain.app) == []
