"""The crash scenario: leveraged longs, a 40% crash walked down by the move cap, the waterfall."""

from __future__ import annotations

from itertools import pairwise

from state import builders, queries
from tests.state.helpers import USDC, Chain, make_genesis, signer

BTC = "BTC-PERP"
LONGS_19X = [f"long19x-{i}" for i in range(8)]
LONGS_8X = [f"long8x-{i}" for i in range(4)]
SHORTS = ["short-a", "short-b"]


def setup_chain() -> Chain:
    balances = {name: 1_000 * USDC for name in LONGS_19X + LONGS_8X}
    balances.update({"short-a": 400_000 * USDC, "short-b": 100_000 * USDC, "backstop": 1_000_000 * USDC,
                     "venue": 1_000 * USDC})
    chain = Chain(make_genesis(balances=balances, insurance_fund_seed=500 * USDC))
    venue = signer("venue")
    txs = [builders.build_backstop_tx(signer("backstop"), chain.cid(), BTC, 100_000, 10_000, fee=chain.fee(),
                                      expiry=chain.expiry(), nonce=chain.nonce())]
    plan = [(name, 38_000) for name in LONGS_19X] + [(name, 16_000) for name in LONGS_8X]
    for i, (name, size) in enumerate(plan):
        order_id = i + 1
        short = SHORTS[0] if i % 3 else SHORTS[1]
        maker = chain.order(signer(short), BTC, "sell", size, 500_000, order_id)
        taker = chain.order(signer(name), BTC, "buy", size, 500_000, 1)
        txs.append(chain.trade(venue, maker, taker, size, 500_000))
    results = chain.block(txs)
    assert all(r.ok for r in results), [r.log for r in results if not r.ok]
    return chain


def test_crash_walks_down_liquidates_draws_the_fund_and_deleverages() -> None:
    chain = setup_chain()
    app = chain.app
    fund_start = app.ledger.globals.insurance
    seen: list[dict] = []
    prices = []
    # a 1% dip, then feeders report the 40% crash at once; the move cap walks the price down
    chain.block(chain.prices({BTC: 495_000}))
    for _ in range(14):
        chain.block(chain.prices({BTC: 300_000}))
        seen += chain.end_events
        prices.append(app.ledger.markets[BTC].price)
    # reports of block N set the price at block N+1
    assert prices[:2] == [495_000, 470_250]  # 5% below 495,000: the cap, not the report
    assert prices[-1] == 300_000
    assert all(a > b for a, b in pairwise(prices) if a != 300_000)

    kinds = [e["type"] for e in seen]
    for kind in ("liquidation", "liquidation_fill", "insurance_cover", "liquidation_fee", "deleverage",
                 "liquidation_done"):
        assert kind in kinds, kind
    # order of the story: the backstop and the fund first, deleveraging only once the fund is short
    assert kinds.index("liquidation_fill") < kinds.index("deleverage")
    assert kinds.index("insurance_cover") < kinds.index("deleverage")
    first_adl = kinds.index("deleverage")
    covers_after = [e for e in seen[first_adl:] if e["type"] == "insurance_cover"]
    assert all(e["attrs"]["amount"] <= fund_start for e in covers_after)
    # every long is gone; shorts (profitable) were deleveraged, never liquidated
    for name in LONGS_19X + LONGS_8X:
        assert queries.positions(app, signer(name).address) == []
        assert queries.account_health(app, signer(name).address)["equity"] >= 0
    liquidated = {e["attrs"]["account"] for e in seen if e["type"] == "liquidation"}
    assert liquidated == {signer(n).address for n in LONGS_19X + LONGS_8X}
    adl_counterparties = {e["attrs"]["counterparty"] for e in seen if e["type"] == "deleverage"}
    assert adl_counterparties <= {signer(s).address for s in SHORTS}
    # the backstop took at most its registered size and sits long now
    backstop = queries.positions(app, signer("backstop").address)
    assert backstop and 0 < backstop[0]["size"] <= 100_000
    # the event log answers the liquidations query
    page = queries.liquidations(app, 0, chain.height, 0, 1000)
    assert page["total"] == len(seen) and page["total_exact"]
    assert [item["type"] for item in page["items"]] == kinds
    # counting stops a bounded distance past the page, and says so
    capped = queries.liquidations(app, 0, chain.height, 1, 2, counted_beyond=1)
    assert len(seen) > 4 and capped["total"] == 4 and not capped["total_exact"]
    assert capped["items"] == page["items"][1:3]
    assert queries.market(app, BTC)["open_interest"] == sum(
        p["size"] for name in ["backstop"] + SHORTS for p in queries.positions(app, signer(name).address)
        if p["size"] > 0
    )


def test_crash_is_deterministic_across_independent_runs() -> None:
    hashes = []
    for _ in range(2):
        chain = setup_chain()
        chain.block(chain.prices({BTC: 495_000}))
        for _ in range(6):
            chain.block(chain.prices({BTC: 300_000}))
        hashes.append(chain.hashes)
    assert hashes[0] == hashes[1]


def test_crash_replays_identically_when_the_app_is_reopened_midway() -> None:
    from state.app import ClearingApp

    runs = []
    for reopen in (None, 3):
        chain = setup_chain()
        chain.block(chain.prices({BTC: 495_000}))
        for number in range(6):
            if number == reopen:
                chain.app = ClearingApp(chain.store, chain.genesis)
            chain.block(chain.prices({BTC: 300_000}))
        runs.append(chain.hashes)
    assert runs[0] == runs[1]


def test_genesis_prices_are_fresh_at_the_first_block_however_late_it_comes() -> None:
    late = Chain(make_genesis(balances={"a": 1_000 * USDC}))
    late.block(dt_ms=10 * 86_400_000)
    assert queries.market(late.app, BTC)["status"] == "active"
    late.block(dt_ms=31_000)  # then the staleness window runs as usual
    assert queries.market(late.app, BTC)["status"] == "stale"
