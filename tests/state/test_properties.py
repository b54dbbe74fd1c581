"""Random tx sequences and price paths: invariants after every block, identical app hashes
for independent executions, and for an execution that reopens the app on its store midway."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from state import builders
from state.app import ClearingApp
from tests.state.helpers import USDC, Chain, make_genesis, signer

MARKETS = ["BTC-PERP", "ETH-PERP", "SOL-PERP"]
TRADERS = [f"t{i}" for i in range(6)]

trade_op = st.tuples(st.just("trade"), st.integers(0, 5), st.integers(0, 5), st.integers(1, 4000),
                     st.integers(-30, 30), st.integers(0, 2))
price_op = st.tuples(st.just("price"), st.integers(0, 2), st.integers(-60, 60))
transfer_op = st.tuples(st.just("transfer"), st.integers(0, 5), st.integers(0, 5), st.integers(1, 3000))
withdraw_op = st.tuples(st.just("withdraw"), st.integers(0, 5), st.integers(1, 3000))
time_op = st.tuples(st.just("time"), st.integers(1, 4))
deposit_op = st.tuples(st.just("deposit"), st.integers(0, 5), st.integers(1, 10**8))
block = st.lists(st.one_of(trade_op, trade_op, trade_op, price_op, transfer_op, withdraw_op, time_op, deposit_op),
                 max_size=8)
scenario = st.lists(block, min_size=1, max_size=30)

GENESIS = make_genesis(
    balances={**{t: 1_000 * USDC for t in TRADERS}, "venue": 1_000 * USDC, "backstop": 500_000 * USDC},
    insurance_fund_seed=50 * USDC, market_funding_interval_ms=3000, max_price_move_ppm=500_000,
)


EVENTS: list[str] = []


def run(blocks: list, reopen_at: int | None = None) -> list[bytes]:
    chain = Chain(GENESIS)
    cid, fee = chain.cid(), chain.fee()
    setup = [builders.build_backstop_tx(signer("backstop"), cid, m, 2000, 10_000, fee=fee, expiry=50, nonce=i)
             for i, m in enumerate(MARKETS)]
    chain.block(setup)
    order_id = 0
    deposits = 0
    for number, ops in enumerate(blocks):
        if number == reopen_at:
            chain.app = ClearingApp(chain.store, GENESIS)
        txs, dt, reports = [], 1000, {}
        for op in ops:
            kind = op[0]
            if kind == "trade":
                _, i, j, lots, ticks, m = op
                if i == j:
                    continue
                market = chain.app.ledger.markets[MARKETS[m]]
                price = max(market.params.tick_size, market.price + ticks * market.params.tick_size)
                size = lots * market.params.lot_size
                order_id += 1
                buy = chain.order(signer(TRADERS[i]), MARKETS[m], "buy", size, price, order_id)
                sell = chain.order(signer(TRADERS[j]), MARKETS[m], "sell", size, price, order_id)
                txs.append(chain.trade(signer("venue"), buy, sell, size, price))
            elif kind == "price":
                market = chain.app.ledger.markets[MARKETS[op[1]]]
                reports[MARKETS[op[1]]] = max(1, market.price * (100 + op[2]) // 100)
            elif kind == "transfer":
                txs.append(builders.build_transfer_tx(signer(TRADERS[op[1]]), cid, signer(TRADERS[op[2]]).address,
                                                      "USDC", op[3] * USDC // 10, fee=fee, expiry=chain.expiry(),
                                                      nonce=chain.nonce()))
            elif kind == "withdraw":
                txs.append(builders.build_withdraw_tx(signer(TRADERS[op[1]]), cid, "USDC", op[2] * USDC // 10, "x",
                                                      fee=fee, expiry=chain.expiry(), nonce=chain.nonce()))
            elif kind == "time":
                dt += op[1] * 1000
            elif kind == "deposit":
                deposits += 1
                for v in range(3):
                    txs.append(builders.build_deposit_tx(signer(f"v{v}"), cid, f"ext-{deposits}",
                                                         signer(TRADERS[op[1]]).address, "BTC", op[2], fee=fee,
                                                         expiry=chain.expiry(), nonce=chain.nonce()))
        if reports:
            for market_id in MARKETS:
                reports.setdefault(market_id, chain.app.ledger.markets[market_id].price)
            txs += chain.prices(reports)
        chain.block(txs, dt_ms=dt)  # asserts the invariants
        EVENTS.extend(e["type"] for e in chain.end_events)
    return chain.hashes


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario, st.integers(0, 9))
def test_random_blocks_keep_invariants_and_replay_identically(blocks: list, reopen: int) -> None:
    first = run(blocks)
    assert run(blocks) == first
    assert run(blocks, reopen_at=min(reopen, len(blocks) - 1)) == first


def test_volatile_path_with_leverage_keeps_invariants() -> None:
    """A fixed, harsh path: leveraged trades both ways, then prices swinging 12% per report."""
    blocks = [[("trade", 2 * i, 2 * i + 1, 2500, 0, 0) for i in range(3)]
              + [("trade", 2 * i + 1, 2 * i, 700, 0, m) for i in range(3) for m in (1, 2)]]
    for k in range(12):
        swing = -12 if k < 6 else 12
        blocks.append([("price", m, swing if m != 2 else -swing) for m in range(3)] + [("time", 2)])
    EVENTS.clear()
    first = run(blocks)
    assert {"liquidation", "liquidation_fill", "liquidation_done"} <= set(EVENTS)
    assert run(blocks, reopen_at=5) == first
