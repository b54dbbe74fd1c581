"""Funding (state/README.md, "Funding"): audit finding 5.

BTC-PERP at 50,000 (price 500_000, value_multiplier 1); funding_interval 5 s here; clamp 1,000 ppm;
funding_impact_notional 10,000 USDC (the default), so impact = ceil(10**10 / 500_000) = 20_000 size
units (0.2 BTC). Positions settle lazily: pending = -size * (index - snapshot) / 1e6 micro-USDC.
"""

from __future__ import annotations

from state.codes import Code
from tests.state.helpers import USDC, Chain, make_genesis, signer

BTC = "BTC-PERP"
P = 500_000
PPM = 1_000_000
INTERVAL = 5_000
IMPACT = -((-10_000 * USDC) // P)  # 20_000
OUTSIDE_BAND = int(getattr(Code, "PRICE_OUTSIDE_BAND", 44))


def funded() -> Chain:
    return Chain(make_genesis(balances={n: 100_000 * USDC for n in ("alice", "bob", "carol", "dave")}
                              | {"venue": 100 * USDC}, market_funding_interval_ms=INTERVAL))


def fill(chain: Chain, buyer: str, seller: str, qty: int, price: int, oid: int) -> bytes:
    return chain.trade(signer("venue"), chain.order(signer(buyer), BTC, "buy", qty, price, oid),
                       chain.order(signer(seller), BTC, "sell", qty, price, oid), qty, price)


def btc(chain: Chain):
    return chain.app.ledger.markets[BTC]


def pending(chain: Chain, name: str) -> int:
    """Unsettled funding of the BTC position, rounded down (a credit) as settlement would."""
    size, snapshot, _cost = chain.app.ledger.accounts[signer(name).address].positions[BTC]
    return (-size * (btc(chain).funding_index - snapshot)) // PPM


def to_funding_time(chain: Chain) -> None:
    """One block at exactly the next funding time."""
    chain.block(dt_ms=btc(chain).next_funding_ms - chain.time_ms)


def test_wash_trade_at_twice_the_oracle_is_refused_and_the_honest_long_pays_nothing() -> None:
    chain = funded()
    assert chain.one(fill(chain, "alice", "bob", 1_000_000, P, 1)).ok  # an honest 10 BTC long at the oracle
    to_funding_time(chain)
    assert btc(chain).last_rate_ppm == 0 and btc(chain).funding_index == 0
    # the auditor's wash trade: 1 lot (10 units) at twice the oracle (0.006 USDC of fees)
    wash = chain.one(fill(chain, "carol", "dave", 10, 2 * P, 2))
    to_funding_time(chain)
    assert pending(chain, "alice") == 0  # was: the clamp, 0.1% of 500,000 = 500 USDC
    assert btc(chain).last_rate_ppm == 0
    assert wash.code == OUTSIDE_BAND, wash.log


def test_one_lot_trade_moves_the_rate_only_in_proportion_to_its_size() -> None:
    chain = funded()
    assert IMPACT == 20_000
    assert chain.one(fill(chain, "alice", "bob", 1_000_000, P, 1)).ok  # an honest 10 BTC long at the oracle
    to_funding_time(chain)
    assert btc(chain).last_rate_ppm == 0 and btc(chain).funding_index == 0
    # 1 lot at the clamp's premium (+0.1%): adds at most lot / impact of the clamp, 10 / 20,000 * 1,000 ppm
    assert chain.one(fill(chain, "carol", "dave", 10, 500_500, 3)).ok
    to_funding_time(chain)
    # premium = floor(500 * 10 * 1e6 / (max(10, 20,000) * 500,000)) = floor(0.5) = 0
    assert btc(chain).last_rate_ppm * IMPACT <= 10 * 1_000
    assert btc(chain).last_rate_ppm == 0
    assert pending(chain, "alice") == 0
    # 1 lot at the band's edge (+5% = the IMF): the most one lot can add, 10 / 20,000 * 50,000 ppm = 25 ppm
    assert btc(chain).imf_ppm == 50_000
    assert chain.one(fill(chain, "carol", "dave", 10, 525_000, 4)).ok
    to_funding_time(chain)
    rate = (25_000 * 10 * PPM) // (IMPACT * P)  # floor(250,000 * 1e6 / 1e10) = 25
    assert rate == 25
    assert btc(chain).last_rate_ppm == rate
    assert btc(chain).funding_index == rate * P  # * mult (1) * one interval
    assert pending(chain, "alice") == -(1_000_000 * rate * P) // PPM == -12_500_000  # 12.5 USDC, not 500


def test_a_time_jump_of_k_intervals_pays_k_intervals() -> None:
    chain = funded()
    start = btc(chain).next_funding_ms
    # 10 BTC at 50,100 (+0.2%, inside the band): 1,000,000 units >= the impact size, the rate clamps
    assert chain.one(fill(chain, "alice", "bob", 1_000_000, 501_000, 1)).ok
    # premium = floor(1,000 * 1,000,000 * 1e6 / (1,000,000 * 500,000)) = 2,000 ppm -> clamp 1,000
    chain.block(dt_ms=start + 2 * INTERVAL + 1_000 - chain.time_ms)  # three funding times have passed
    k = (chain.time_ms - start) // INTERVAL + 1
    assert k == 3
    assert btc(chain).last_rate_ppm == 1_000
    assert btc(chain).funding_index == 1_000 * P * k  # each interval paid at the rate
    assert btc(chain).next_funding_ms == start + k * INTERVAL
    assert pending(chain, "alice") == -1_500 * USDC  # 3 x 0.1% of 500,000 USDC
    assert pending(chain, "bob") == 1_500 * USDC
    chain.block(dt_ms=INTERVAL)  # nothing traded since: the next interval pays nothing
    assert btc(chain).last_rate_ppm == 0 and btc(chain).funding_index == 1_000 * P * k
