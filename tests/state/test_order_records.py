"""Orders' fill records live in memory and in per-block journal entries: the two must agree,
and a node that reopens its store must carry on exactly as one that never stopped."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from primitives.hashing import sha256
from state import builders, queries
from state.app import ClearingApp
from state.codes import Code
from state.model import order_key
from state.order_records import OrderRecords, journal_key
from tests.state.helpers import USDC, Chain, make_genesis, signer

BTC = "BTC-PERP"
P = 500_000
BALANCES = {"alice": 10_000 * USDC, "bob": 10_000 * USDC, "venue": 100 * USDC}
ADDRESSES = [bytes([i]) * 20 for i in range(3)]

# One block's writes: (address index, order id, filled, cancelled, expiry ahead of the block).
writes = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(1, 9), st.booleans(),
                            st.integers(0, 6)), max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(writes, min_size=1, max_size=25))
def test_records_follow_a_model_and_the_journal_rebuilds_them(blocks) -> None:
    records = OrderRecords()
    journal: dict[int, list] = {}
    model: dict[bytes, tuple] = {}
    for height, block in enumerate(blocks, start=1):
        for address, order_id, filled, cancelled, ahead in block:
            key = order_key(ADDRESSES[address], order_id)
            old = model.get(key)
            # expiry never decreases while a record lives (fills repeat the order's, cancels extend)
            expiry = height + ahead if old is None else max(old[3], height + ahead)
            record = (b"h" * 32, filled, int(cancelled), expiry)
            records.put(ADDRESSES[address], order_id, record)
            model[key] = record
        records.expire(height)
        model = {key: record for key, record in model.items() if record[3] > height}
        entry, emptied = records.commit(height)
        if entry:
            journal[height] = entry
        for gone in emptied:
            del journal[gone]
        assert {key: current[0] for key, current in records.current().items()} == model
        assert all(records.live_counts().get(h, 0) > 0 for h in journal), "a stored entry holds nothing"
        assert set(records.live_counts()) == set(journal)
        rebuilt = OrderRecords.rebuild(sorted(journal.items()), height)
        assert rebuilt.current() == records.current()
        assert rebuilt.live_counts() == records.live_counts()


def cancel(chain: Chain, who: str, order_id: int, order_expiry: int, order=None) -> bytes:
    return builders.build_cancel_tx(signer(who), chain.cid(), order_id, order_expiry, fee=chain.fee(),
                                    expiry=chain.expiry(), nonce=chain.nonce(), order=order)


def test_fills_cancels_expiries_and_a_reopen_through_the_journal() -> None:
    chain = Chain(make_genesis(balances=BALANCES))
    a, b, venue = signer("alice"), signer("bob"), signer("venue")
    bid = chain.order(a, BTC, "buy", 2000, P, 1, expiry=4)
    ask = chain.order(b, BTC, "sell", 2000, P, 1, expiry=9)
    assert all(r.ok for r in chain.block([chain.trade(venue, bid, ask, 1000, P)]))  # height 1
    assert chain.store.get(journal_key(1)) is not None
    # alice extends order 1 by cancelling it until 7; bob cancels order 5, which never traded,
    # handing over the order so that the chain keeps the record just until its real expiry
    unfilled = chain.order(b, BTC, "sell", 1000, P, 5, expiry=6)
    assert all(r.ok for r in chain.block([cancel(chain, "alice", 1, 7), cancel(chain, "bob", 5, 6, unfilled)]))
    assert queries.order(chain.app, a.address, 1) == {"hash": sha256(bid["body"]), "filled": 1000,
                                                      "cancelled": True, "expiry": 7}
    assert queries.invariants(chain.app) == []
    while chain.height < 7:  # height 4 passes and alice's record stays: the cancel extended it
        chain.block()
        assert queries.invariants(chain.app) == []
    assert queries.order(chain.app, a.address, 1) is None and queries.order(chain.app, b.address, 5) is None
    assert chain.store.get(journal_key(2)) is None  # none of its records is current any more
    assert chain.store.get(journal_key(1)) is not None  # bob's order 1 still lives there

    chain.app = ClearingApp(chain.store, chain.genesis)  # a restart rebuilds them from the journal
    assert queries.invariants(chain.app) == []
    again = chain.order(a, BTC, "buy", 2000, P, 2, expiry=20)
    assert Code(chain.one(chain.trade(venue, again, ask, 2000, P)).code) == Code.ORDER_OVERFILL
    assert chain.one(chain.trade(venue, again, ask, 1000, P)).ok
    assert chain.store.get(journal_key(1)) is None  # bob's record moved to a later entry
    chain.block([])
    chain.block([])  # past 9: bob's record goes
    assert queries.order(chain.app, b.address, 1) is None
    assert queries.order(chain.app, a.address, 2)["filled"] == 1000
    assert queries.invariants(chain.app) == []


def test_a_reopened_node_reaches_the_same_app_hashes_as_one_that_never_stopped() -> None:
    steady, restarted = (Chain(make_genesis(balances=BALANCES)) for _ in range(2))
    a, b, venue = signer("alice"), signer("bob"), signer("venue")
    for round_ in range(8):
        orders = [(steady.order(a, BTC, "buy", 300, P, 10 * round_ + i, expiry=round_ + 2 + i),
                   steady.order(b, BTC, "sell", 300, P, 10 * round_ + i, expiry=round_ + 3))
                  for i in range(3)]
        txs = [steady.trade(venue, bid, ask, 100, P, nonce=1000 * round_ + i) for i, (bid, ask) in enumerate(orders)]
        if round_ % 3 == 1:
            txs.append(cancel(steady, "alice", 10 * round_, round_ + 6))
        for chain in (steady, restarted):
            results = chain.block(txs)
            assert all(r.ok for r in results), [r.log for r in results]
        if round_ % 2:
            restarted.app = ClearingApp(restarted.store, restarted.genesis)
        assert restarted.hashes == steady.hashes
    for _ in range(10):  # every record expires, and with them every journal entry
        for chain in (steady, restarted):
            chain.block()
        restarted.app = ClearingApp(restarted.store, restarted.genesis)
        assert restarted.hashes == steady.hashes
    assert len(steady.app.orders) == 0 and not list(steady.store.iterate(b"f/", b"f0"))
    assert queries.invariants(restarted.app) == []


def test_invariants_catch_records_that_differ_from_the_journal() -> None:
    chain = Chain(make_genesis(balances=BALANCES))
    a, b, venue = signer("alice"), signer("bob"), signer("venue")
    bid = chain.order(a, BTC, "buy", 1000, P, 1)
    ask = chain.order(b, BTC, "sell", 1000, P, 1)
    assert chain.one(chain.trade(venue, bid, ask, 1000, P)).ok
    chain.app.orders._current.pop(order_key(a.address, 1))  # fills would now take the order for new
    assert any("order records" in problem for problem in queries.invariants(chain.app))
    replay = chain.order(b, BTC, "sell", 1000, P, 2)
    chain.check = False  # the helper would stop at the broken invariant
    assert chain.one(chain.trade(venue, bid, replay, 1000, P)).ok  # the overfill the records prevent
