"""The in-memory order index answers "no record" for fills; it must match the store's ``r/`` keys."""

from __future__ import annotations

from consensus.codec import decode
from state import builders, queries
from state.app import ClearingApp
from state.codes import Code
from state.model import order_key, prefix_end
from tests.state.helpers import USDC, Chain, make_genesis, signer

BTC = "BTC-PERP"
P = 500_000
BALANCES = {"alice": 10_000 * USDC, "bob": 10_000 * USDC, "venue": 100 * USDC}


def stored_records(chain: Chain) -> dict[bytes, int]:
    return {key: decode(value)[3] for key, value in chain.store.iterate(b"r/", prefix_end(b"r/"))}


def cancel(chain: Chain, who: str, order_id: int, order_expiry: int) -> bytes:
    return builders.build_cancel_tx(signer(who), chain.cid(), order_id, order_expiry, fee=chain.fee(),
                                    expiry=chain.expiry(), nonce=chain.nonce())


def test_the_index_follows_fills_cancels_expiries_and_a_reopen() -> None:
    chain = Chain(make_genesis(balances=BALANCES))
    a, b, venue = signer("alice"), signer("bob"), signer("venue")
    bid = chain.order(a, BTC, "buy", 2000, P, 1, expiry=4)  # pruned after height 4
    ask = chain.order(b, BTC, "sell", 2000, P, 1, expiry=9)
    assert all(r.ok for r in chain.block([chain.trade(venue, bid, ask, 1000, P)]))
    # alice extends order 1 by cancelling it until 7; bob cancels order 5, which never traded
    assert all(r.ok for r in chain.block([cancel(chain, "alice", 1, 7), cancel(chain, "bob", 5, 6)]))
    keys = {order_key(a.address, 1): 7, order_key(b.address, 1): 9, order_key(b.address, 5): 6}
    assert stored_records(chain) == keys
    assert chain.app.orders.keys() == set(keys)
    assert queries.invariants(chain.app) == []

    while chain.height < 7:  # height 4 passes with alice's record kept: the cancel extended it
        chain.block()
        assert queries.invariants(chain.app) == []
    assert stored_records(chain) == {order_key(b.address, 1): 9}
    assert chain.app.orders.keys() == {order_key(b.address, 1)}

    chain.app = ClearingApp(chain.store, chain.genesis)  # a restart rebuilds the index from the store
    assert chain.app.orders.keys() == {order_key(b.address, 1)}
    assert queries.invariants(chain.app) == []
    # bob's order 1 has 1000 left: the index must send the fill to its record
    again = chain.order(a, BTC, "buy", 2000, P, 2, expiry=20)
    assert Code(chain.one(chain.trade(venue, again, ask, 2000, P)).code) == Code.ORDER_OVERFILL
    assert chain.one(chain.trade(venue, again, ask, 1000, P)).ok
    chain.block([])
    chain.block([])  # past 9: bob's record goes
    assert stored_records(chain) == {order_key(a.address, 2): 20}
    assert queries.invariants(chain.app) == []


def test_invariants_catch_an_order_index_that_differs_from_the_store() -> None:
    chain = Chain(make_genesis(balances=BALANCES))
    a, b, venue = signer("alice"), signer("bob"), signer("venue")
    bid = chain.order(a, BTC, "buy", 1000, P, 1)
    ask = chain.order(b, BTC, "sell", 1000, P, 1)
    assert chain.one(chain.trade(venue, bid, ask, 1000, P)).ok
    chain.app.orders.discard(order_key(a.address, 1))  # fills would now take the order for new
    assert any("order index" in problem for problem in queries.invariants(chain.app))
    replay = chain.order(b, BTC, "sell", 1000, P, 2)
    assert chain.one(chain.trade(venue, bid, replay, 1000, P)).ok  # the overfill the index must prevent
