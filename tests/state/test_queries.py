"""``state/queries.py``: the accounts nearest to liquidation (``accounts_at_risk``) and the
index walk under it (``LiquidationIndex.nearest``).

Expectations are worked out from the definitions, not from the query's helpers: equity is quote
plus ``size * price`` (BTC-PERP's value multiplier is 1, no collateral, no funding interval
elapses), maintenance margin ``ceil(|size * price| * 30,000 / 1e6)`` (genesis MMF 3%).
"""

from __future__ import annotations

import heapq

import pytest

from state.queries import AT_RISK_MAX_DEPTH, accounts_at_risk
from state.waterfall import LiquidationIndex
from tests.state.helpers import USDC, Chain, make_genesis, signer

BTC = "BTC-PERP"
PPM = 1_000_000
MMF_PPM = 30_000


def ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def fill(chain: Chain, buyer: str, seller: str, qty: int, price: int, oid: int) -> bytes:
    return chain.trade(signer("venue"), chain.order(signer(buyer), BTC, "buy", qty, price, oid),
                       chain.order(signer(seller), BTC, "sell", qty, price, oid), qty, price)


def expected(chain: Chain, name: str) -> tuple[int, int, int]:
    """(margin ratio ppm, equity, MMR) from the committed account, by the definitions above."""
    acct = chain.app.ledger.accounts[signer(name).address]
    price = chain.app.ledger.markets[BTC].price
    size = acct.positions[BTC][0]
    equity = acct.quote + size * price
    mmr = ceil_div(abs(size * price) * MMF_PPM, PPM)
    return equity * PPM // mmr, equity, mmr


@pytest.fixture(scope="module")
def leveraged() -> Chain:
    """Longs at 2x, 4x, 8x and 12x of 10,000 USDC against one deep short, at 50,000 per BTC; a
    funded account with no position ('idle')."""
    names = {"x2": 2, "x4": 4, "x8": 8, "x12": 12}
    balances = {name: 10_000 * USDC for name in names}
    balances.update({"short": 1_000_000 * USDC, "venue": 100 * USDC, "idle": 5_000 * USDC})
    chain = Chain(make_genesis(balances=balances))
    txs = [fill(chain, name, "short", lev * 10_000 * 100_000 // 50_000, 500_000, i + 1)
           for i, (name, lev) in enumerate(names.items())]
    results = chain.block(txs)
    assert all(r.ok for r in results), [r.log for r in results]
    chain.block(chain.prices({BTC: 475_000}))  # -5% (one breaker step): the 12x long nears its margin
    chain.block()
    assert chain.app.ledger.markets[BTC].price == 475_000
    return chain


def test_the_nearest_accounts_come_first_with_exact_ratio_and_distance(leveraged: Chain) -> None:
    page = accounts_at_risk(leveraged.app, 0, 10)
    assert page["index_ready"] is True
    order = [item["address"] for item in page["items"]]
    # the short (1M USDC over a 5.2 BTC short) is far from its margin: last
    assert order[:4] == [signer(n).address for n in ("x12", "x8", "x4", "x2")]
    assert order[4] == signer("short").address
    assert signer("idle").address not in order  # no position: nothing to liquidate
    for item in page["items"][:4]:
        name = {signer(n).address: n for n in ("x12", "x8", "x4", "x2")}[item["address"]]
        ratio, equity, mmr = expected(leveraged, name)
        assert (item["margin_ratio_ppm"], item["equity"], item["maintenance_margin"]) == (ratio, equity, mmr)
        assert item["distance_ppm"] == (equity - mmr) * PPM // equity
        assert item["liquidatable"] is False and item["positions"] == 1
    # 12x after a 5% fall: equity ~ 10,000 - 6,000 = 4,000 USDC over an MMR of ~3,420 (117%)
    x12 = page["items"][0]
    assert 1_150_000 < x12["margin_ratio_ppm"] < 1_180_000
    assert 130_000 < x12["distance_ppm"] < 150_000  # ~14% of its equity from liquidation


def test_pages_are_slices_of_one_ranking_and_depth_is_bounded(leveraged: Chain) -> None:
    whole = accounts_at_risk(leveraged.app, 0, 5)["items"]
    assert accounts_at_risk(leveraged.app, 2, 2)["items"] == whole[2:4]
    assert accounts_at_risk(leveraged.app, 5, 10)["items"] == []
    assert accounts_at_risk(leveraged.app, 0, 0)["items"] == []
    with pytest.raises(ValueError):
        accounts_at_risk(leveraged.app, AT_RISK_MAX_DEPTH, 1)
    with pytest.raises(ValueError):
        accounts_at_risk(leveraged.app, -1, 5)


def test_an_index_not_built_yet_answers_an_empty_list_not_a_guess() -> None:
    chain = Chain(make_genesis(balances={"a": 10 * USDC}))
    chain.app.liquidations.invalidate()
    page = accounts_at_risk(chain.app, 0, 10)
    assert page == {"items": [], "indexed": len(chain.app.liquidations.keys), "index_ready": False}


def test_nearest_walks_live_keys_in_order_and_skips_stale_entries() -> None:
    index = LiquidationIndex()
    keys = {bytes([i]) * 20: (i * 7919) % 101 for i in range(60)}
    index.keys = dict(keys)
    index.heap = [(k, a) for a, k in keys.items()]
    heapq.heapify(index.heap)
    # re-key some accounts the way ``update`` does: the old heap entries stay behind, stale
    for i in range(0, 60, 3):
        address = bytes([i]) * 20
        index.keys[address] = keys[address] + 50
        heapq.heappush(index.heap, (index.keys[address], address))
    del index.keys[bytes([1]) * 20]  # dropped (no positions left): its entry is stale too
    live = sorted(index.keys.values())
    for limit in (0, 1, 10, 59, 200):
        found = index.nearest(limit)
        assert [index.keys[a] for a in found] == live[:limit]
        assert len(set(found)) == len(found)
    assert len(index.heap) > len(index.keys)  # read-only: nothing popped or compacted
