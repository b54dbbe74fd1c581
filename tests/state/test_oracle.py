"""Oracle and circuit breaker (state/README.md, "Oracle and circuit breaker"): audit finding 4,
the staleness item (a) and the small-price item (e).

Four feeders (the validators v0..v3, power 10 each): a quorum is 3 of them. Reports delivered in a
block are applied by the next block's begin_block; their report time is the block time of the block
that delivered them. BTC-PERP: 1 BTC = 100_000 size units, $1 = 10 price units, value_multiplier 1.
"""

from __future__ import annotations

from state import builders
from state.codes import Code
from tests.state.helpers import USDC, Chain, make_genesis, signer

BTC = "BTC-PERP"
P = 500_000
PPM = 1_000_000
CAP = 50_000  # genesis max_price_move_ppm
HALT_BLOCKS = 10  # genesis breaker_halt_blocks (default)
OUTSIDE_BAND = int(getattr(Code, "PRICE_OUTSIDE_BAND", 44))


def ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def walk_down(price: int) -> int:
    """One capped step down: low = max(1, min(P - 1, ceil(P * (1e6 - cap) / 1e6)))."""
    return max(1, min(price - 1, ceil_div(price * (PPM - CAP), PPM)))


def addr(name: str) -> bytes:
    return signer(name).address


def funded(**overrides) -> Chain:
    return Chain(make_genesis(balances={"alice": 10_000 * USDC, "bob": 10_000 * USDC, "carol": 10_000 * USDC,
                                        "dave": 10_000 * USDC, "venue": 100 * USDC}, **overrides))


def fill(chain: Chain, buyer: str, seller: str, qty: int, price: int, oid: int, market: str = BTC) -> bytes:
    return chain.trade(signer("venue"), chain.order(signer(buyer), market, "buy", qty, price, oid),
                       chain.order(signer(seller), market, "sell", qty, price, oid), qty, price)


def status(chain: Chain, market: str = BTC) -> str:
    return chain.app.market_status(chain.app.ledger.markets[market])


def btc(chain: Chain):
    return chain.app.ledger.markets[BTC]


def position(chain: Chain, name: str) -> int:
    acct = chain.app.ledger.accounts.get(addr(name))
    return 0 if acct is None or BTC not in acct.positions else acct.positions[BTC][0]


def withdraw(chain: Chain, who: str, amount: int) -> bytes:
    return builders.build_withdraw_tx(signer(who), chain.cid(), "USDC", amount, "dest", fee=chain.fee(),
                                      expiry=chain.expiry(), nonce=chain.nonce())


def report(chain: Chain, feeders: list[int], price: int, market: str = BTC) -> list[bytes]:
    return [builders.build_oracle_tx(signer(f"v{i}"), chain.cid(), {market: price}, fee=chain.fee(),
                                     expiry=chain.expiry(), nonce=chain.nonce()) for i in feeders]


# --- the band: no fill far from the oracle -------------------------------------------------------


def test_fills_priced_outside_the_imf_band_around_the_oracle_are_refused() -> None:
    chain = funded()
    assert btc(chain).imf_ppm == 50_000  # band: |price - 500,000| * 1e6 <= 500,000 * 50,000, i.e. <= 25,000
    above = chain.one(fill(chain, "alice", "bob", 1_000, 525_010, 1))
    below = chain.one(fill(chain, "alice", "bob", 1_000, 474_990, 2))
    assert position(chain, "alice") == 0 and position(chain, "bob") == 0
    assert (above.code, below.code) == (OUTSIDE_BAND, OUTSIDE_BAND)
    assert chain.one(fill(chain, "alice", "bob", 1_000, 525_000, 3)).ok  # the edge is inside
    assert chain.one(fill(chain, "bob", "alice", 1_000, 475_000, 4)).ok


# --- finding 4: a crash beyond the cap puts the market in the capped state ------------------------


def _crash_reported(chain: Chain, price: int, txs: list[bytes] = ()) -> list:
    """Feeders report ``price``; the next block applies the first capped step and runs ``txs``."""
    chain.block(chain.prices({BTC: price}))
    results = chain.block(txs)
    assert btc(chain).price == walk_down(P) == 475_000
    return results


def test_lagging_oracle_trade_at_the_reported_crash_price_is_refused() -> None:
    """A (1,000 USDC) buys 1 BTC at 30,000 from B while the applied price still says 47,500."""
    chain = Chain(make_genesis(balances={"A": 1_000 * USDC, "B": 100_000 * USDC, "venue": 100 * USDC}))
    [result] = _crash_reported(chain, 300_000, [fill(chain, "A", "B", 100_000, 300_000, 1)])
    assert position(chain, "A") == 0 and position(chain, "B") == 0
    assert result.code in (OUTSIDE_BAND, Code.MARKET_NOT_ACTIVE), result.log
    assert getattr(btc(chain), "reported", None) == 300_000
    assert getattr(btc(chain), "breaker", None) == "capped"
    assert status(chain) == "capped"


def test_capped_market_accepts_only_fills_that_shrink_both_positions() -> None:
    chain = funded()
    assert chain.one(fill(chain, "alice", "bob", 10_000, P, 1)).ok  # alice long 0.1 BTC, bob short
    opening, closing = _crash_reported(chain, 300_000, [
        fill(chain, "carol", "dave", 1_000, 475_000, 2),  # in the band, but new risk
        fill(chain, "bob", "alice", 5_000, 475_000, 3),  # both positions shrink
    ])
    assert position(chain, "carol") == 0 and position(chain, "dave") == 0
    assert Code(opening.code) == Code.MARKET_NOT_ACTIVE, opening.log
    assert status(chain) == "capped"
    assert closing.ok, closing.log
    assert position(chain, "alice") == 5_000 and position(chain, "bob") == -5_000


def test_withdrawal_while_capped_is_checked_at_the_worse_of_applied_and_reported_prices() -> None:
    chain = funded()
    assert chain.one(fill(chain, "alice", "bob", 100_000, P, 1)).ok  # alice long 1 BTC at 50,000
    alice_quote = chain.app.ledger.accounts[addr("alice")].quote
    bob_quote = chain.app.ledger.accounts[addr("bob")].quote
    fee = chain.fee()
    alice_w, bob_w = _crash_reported(chain, 300_000, [withdraw(chain, "alice", 2_000 * USDC),
                                                     withdraw(chain, "bob", 5_000 * USDC)])
    imf = btc(chain).imf_ppm  # the IMF of the block the withdrawals ran in
    imr = ceil_div(100_000 * 475_000 * imf, PPM)
    # at the applied 47,500 alice could take 2,000 out: equity ~7,495 against IMR 47,500 * IMF
    assert alice_quote + 100_000 * 475_000 - fee - 2_000 * USDC >= imr
    # at the reported 30,000 (the worse price for a long) her equity is negative: nothing may leave
    assert alice_quote + 100_000 * 300_000 < 0
    assert Code(alice_w.code) == Code.INSUFFICIENT_MARGIN, alice_w.log
    # bob's short is worth less at 47,500 than at 30,000: the worse price for him is the applied one
    assert bob_quote - 100_000 * 475_000 - fee - 5_000 * USDC >= imr
    assert bob_w.ok, bob_w.log
    assert chain.app.ledger.globals.withdrawals.get("USDC", 0) == 5_000 * USDC


def _halted(chain: Chain, crash: int) -> list[int]:
    """Report ``crash`` and walk the capped price block by block until the breaker halts."""
    chain.block(chain.prices({BTC: crash}))
    prices, price = [], P
    for i in range(1, HALT_BLOCKS + 1):
        chain.block()
        price = walk_down(price)
        prices.append(price)
        assert btc(chain).price == price, i
        if i < HALT_BLOCKS:
            assert status(chain) == "capped", i
    return prices


def test_breaker_halts_after_breaker_halt_blocks_capped_blocks_and_freezes_the_price() -> None:
    chain = funded()
    prices = _halted(chain, 100_000)  # an 80% crash: far more than ten 5% steps
    assert prices[:3] == [475_000, 451_250, 428_688]  # ceil(451,250 * 0.95) = ceil(428,687.5)
    assert status(chain) == "breaker_halted"
    assert getattr(btc(chain), "breaker", None) == "halted"
    assert getattr(btc(chain), "capped_blocks", None) == HALT_BLOCKS
    for _ in range(3):  # frozen: the price does not walk on
        chain.block()
        assert btc(chain).price == prices[-1]
        assert status(chain) == "breaker_halted"
    refused = chain.one(fill(chain, "alice", "bob", 1_000, prices[-1] // 10 * 10, 1))
    assert Code(refused.code) == Code.MARKET_NOT_ACTIVE


def test_halted_market_reopens_when_the_reports_come_back_within_the_cap() -> None:
    chain = funded()
    prices = _halted(chain, 100_000)
    frozen = prices[-1]  # 299,372: the cap's low is ceil(299,372 * 0.95) = 284,404
    chain.block(chain.prices({BTC: 290_000}))
    chain.block()
    assert btc(chain).price == 290_000
    assert getattr(btc(chain), "breaker", None) == "normal"
    assert status(chain) == "active"
    assert frozen == 299_372
    assert chain.one(fill(chain, "alice", "bob", 1_000, 290_000, 1)).ok


def test_resume_market_proposal_reopens_a_halted_market_at_the_reported_price() -> None:
    chain = funded()
    _halted(chain, 100_000)
    assert status(chain) == "breaker_halted"
    proposal = {"kind": "resume_market", "title": "reopen BTC", "market": BTC}
    votes = [builders.build_vote_tx(signer(f"v{i}"), chain.cid(), proposal, fee=chain.fee(), expiry=chain.expiry(),
                                    nonce=chain.nonce()) for i in range(3)]
    results = chain.block(votes)
    assert all(r.ok for r in results), [r.log for r in results]
    assert btc(chain).price == 100_000  # uncapped: where the feeders say it is
    assert getattr(btc(chain), "breaker", None) == "normal"
    chain.block()
    assert btc(chain).price == 100_000
    assert status(chain) == "active"
    assert chain.one(fill(chain, "alice", "bob", 1_000, 100_000, 1)).ok


def test_lagging_oracle_attack_nets_the_pair_nothing() -> None:
    """The auditor's reproduction: the trade at the reported crash price and a withdrawal of the
    paper profit in the same block; then the price walks down to 30,000 and the waterfall runs."""
    start = {"A": 1_000 * USDC, "B": 100_000 * USDC}
    chain = Chain(make_genesis(balances={**start, "venue": 100 * USDC, "bs": 1_000_000 * USDC}))
    register = builders.build_backstop_tx(signer("bs"), chain.cid(), BTC, 1_000_000, 5_000, fee=chain.fee(),
                                          expiry=chain.expiry(), nonce=chain.nonce())
    assert chain.one(register).ok
    chain.block(chain.prices({BTC: 300_000}))
    attack = chain.block([fill(chain, "A", "B", 100_000, 300_000, 1), withdraw(chain, "A", 13_000 * USDC)])
    assert btc(chain).price == 475_000
    for _ in range(15):  # the price reaches 30,000 (nine capped steps), liquidations run
        chain.block()
    assert btc(chain).price == 300_000
    withdrawn = chain.app.ledger.globals.withdrawals.get("USDC", 0)
    end = 0
    for name in start:
        acct = chain.app.ledger.accounts.get(addr(name))
        if acct is not None:
            end += acct.quote + sum(s * 300_000 for _m, (s, _x, _c) in acct.positions.items())
    net = end + withdrawn - sum(start.values())
    assert net <= 0, (net, [r.log for r in attack])
    assert not attack[0].ok and not attack[1].ok


# --- (a): a price is as old as its reports ---------------------------------------------------------


def test_market_goes_stale_once_block_time_passes_report_time_plus_staleness() -> None:
    chain = funded()
    staleness = chain.app.ledger.globals.risk.oracle_staleness_ms
    assert staleness == 30_000
    chain.block()
    chain.block(chain.prices({BTC: P}))
    reported_at = chain.time_ms
    while chain.time_ms + 5_000 <= reported_at + staleness:
        chain.block(dt_ms=5_000)  # the reports are still fresh and keep being applied
        assert status(chain) == "active", chain.time_ms - reported_at
    assert chain.time_ms == reported_at + staleness
    late = chain.block([fill(chain, "alice", "bob", 1_000, P, 1)], dt_ms=5_000)
    assert chain.time_ms > reported_at + staleness
    assert status(chain) == "stale"
    assert Code(late[0].code) == Code.MARKET_NOT_ACTIVE


def test_price_age_is_the_oldest_report_its_quorum_needs() -> None:
    chain = funded()
    chain.block()
    chain.block(report(chain, [0, 1], P))
    early = chain.time_ms
    chain.block(dt_ms=10_000)
    chain.block(report(chain, [2, 3], P))  # the quorum (3 of 4) still needs one early report
    chain.block(dt_ms=early + 30_000 - chain.time_ms)
    assert chain.time_ms - early == 30_000
    assert status(chain) == "active"  # the early reports are exactly 30 s old: still fresh
    chain.block()  # early + 31 s: the price is 31 s old (its quorum needs an early report)
    assert status(chain) == "stale"


# --- (e): small prices still move -------------------------------------------------------------------


def test_a_price_of_10_moves_by_one_unit_per_block_toward_the_reports() -> None:
    chain = Chain(make_genesis(balances={"alice": 1_000 * USDC}, market_initial_price=10))
    assert btc(chain).price == 10
    # up: high = max(P + 1, floor(P * 1.05)) = P + 1 for every P < 20
    chain.block(chain.prices({BTC: 13}))
    seen = []
    for _ in range(4):
        chain.block()
        seen.append(btc(chain).price)
    assert seen == [11, 12, 13, 13]
    # down: low = max(1, min(P - 1, ceil(P * 0.95))) = P - 1
    chain.block(chain.prices({BTC: 10}))
    seen = []
    for _ in range(4):
        chain.block()
        seen.append(btc(chain).price)
    assert seen == [12, 11, 10, 10]
    assert status(chain) == "active"
