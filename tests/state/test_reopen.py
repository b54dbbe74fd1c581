"""An app reopened on its store remembers seen txs, order fills, proposals and oracle reports."""

from __future__ import annotations

from state import builders, queries
from state.app import ClearingApp
from state.codes import Code
from tests.state.helpers import USDC, Chain, make_genesis, signer

BTC = "BTC-PERP"


def reopen(chain: Chain) -> None:
    chain.app = ClearingApp(chain.store, chain.genesis)


def test_reopened_app_keeps_replay_window_orders_proposals_and_reports() -> None:
    chain = Chain(make_genesis(balances={"alice": 10_000 * USDC, "bob": 10_000 * USDC, "venue": 100 * USDC}))
    cid, fee = chain.cid(), chain.fee()
    transfer = builders.build_transfer_tx(signer("alice"), cid, signer("bob").address, "USDC", 1, fee=fee, expiry=4)
    maker = chain.order(signer("alice"), BTC, "buy", 2000, 500_000, 1)
    taker = chain.order(signer("bob"), BTC, "sell", 2000, 500_000, 1)
    proposal = builders.min_fee_proposal("cheaper", 500)
    chain.block([transfer, chain.trade(signer("venue"), maker, taker, 1000, 500_000)]
                + [builders.build_vote_tx(signer(f"v{i}"), cid, proposal, fee=fee, expiry=9) for i in range(2)]
                + chain.prices({BTC: 510_000}, feeders=3))
    reopen(chain)
    assert Code(chain.app.check_tx(transfer).code) == Code.DUPLICATE_TX
    assert Code(chain.one(chain.trade(signer("venue"), maker, taker, 2000, 500_000)).code) == Code.ORDER_OVERFILL
    assert queries.prices(chain.app)[BTC]["price"] == 510_000  # the reports survived: applied at the next block
    reopen(chain)
    chain.block([builders.build_vote_tx(signer("v2"), cid, proposal, fee=fee, expiry=9)])
    assert chain.app.ledger.globals.min_tx_fee == 500
    for _ in range(3):
        chain.block()
    reopen(chain)
    assert Code(chain.app.check_tx(transfer).code) == Code.TX_EXPIRED
    assert chain.app.store.get(b"t/" + chain.app._decode(transfer).hash) is None  # pruned after expiry


def test_invariants_catch_a_replay_index_that_differs_from_the_store() -> None:
    chain = Chain(make_genesis(balances={"alice": 10_000 * USDC}))
    transfer = builders.build_transfer_tx(signer("alice"), chain.cid(), signer("bob").address, "USDC", 1,
                                          fee=chain.fee(), expiry=6)
    chain.block([transfer])
    assert queries.invariants(chain.app) == []
    tx_hash = chain.app._decode(transfer).hash
    chain.app.seen_buckets[6].discard(tx_hash)  # the duplicate check would now let a replay in
    assert Code(chain.app.check_tx(transfer).code) != Code.DUPLICATE_TX
    assert any("replay index" in problem for problem in queries.invariants(chain.app))
