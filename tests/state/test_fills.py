"""The ``fills`` tx: a venue's batch of trades under one signature, each fill judged on its own."""

from __future__ import annotations

import pytest

from primitives.codec import decode, encode
from state import builders, queries
from state.codes import Code
from state.txs import MAX_FILLS, decode_tx
from tests.state.helpers import USDC, Chain, make_genesis, signer

BTC = "BTC-PERP"
P = 500_000
BALANCES = {"alice": 10_000 * USDC, "bob": 10_000 * USDC, "carol": 10_000 * USDC, "venue": 100 * USDC}


@pytest.fixture
def chain() -> Chain:
    return Chain(make_genesis(balances=BALANCES))


def fills_tx(chain: Chain, fills, fee=None, **kw) -> bytes:
    return builders.build_fills_tx(signer("venue"), chain.cid(), fills,
                                   fee=chain.fee() * len(fills) if fee is None else fee,
                                   expiry=kw.pop("expiry", chain.expiry()), nonce=chain.nonce())


def mixed_fills(chain: Chain):
    """Five fills: the 2nd overfills alice's order 1, the 4th is on the wrong tick."""
    a, b, c = signer("alice"), signer("bob"), signer("carol")
    bid = chain.order(a, BTC, "buy", 3000, P, 1)
    return [
        (bid, chain.order(b, BTC, "sell", 2000, P, 1), 2000, P),
        (bid, chain.order(c, BTC, "sell", 2000, P, 1), 2000, P),  # only 1000 left
        (bid, chain.order(c, BTC, "sell", 1000, P, 2), 1000, P),  # fills the rest
        (chain.order(b, BTC, "buy", 1000, P + 10, 3), chain.order(c, BTC, "sell", 1000, P, 3), 1000, P + 5),
        (chain.order(c, BTC, "buy", 500, P, 4), chain.order(b, BTC, "sell", 500, P, 4), 500, P),
    ]


def state_of(chain: Chain) -> dict:
    """Each trader's account (without the replay hints, which depend on the height)."""
    accounts = {name: queries.account(chain.app, signer(name).address) for name in ("alice", "bob", "carol")}
    return {name: {k: v for k, v in account.items() if k != "replay"} for name, account in accounts.items()}


def test_each_fill_clears_or_is_refused_on_its_own_like_a_trade_tx(chain: Chain) -> None:
    fills = mixed_fills(chain)
    result = chain.one(fills_tx(chain, fills))
    assert result.ok
    assert [e["type"] for e in result.events] == ["trade", "fill_rejected", "trade", "fill_rejected", "trade"]
    rejected = [e.get("attrs", e) for e in result.events if e["type"] == "fill_rejected"]
    assert [(r["index"], r["code"]) for r in rejected] == [(1, Code.ORDER_OVERFILL), (3, Code.NOT_TICK_MULTIPLE)]
    assert queries.order(chain.app, signer("alice").address, 1)["filled"] == 3000

    # the same fills as separate trade txs leave the traders exactly as the batch did
    separate = Chain(make_genesis(balances=BALANCES))
    separate._nonce = 10_000
    codes = [separate.one(separate.trade(signer("venue"), m, t, size, price)).code for m, t, size, price in fills]
    assert codes == [0, Code.ORDER_OVERFILL, 0, Code.NOT_TICK_MULTIPLE, 0]
    assert state_of(separate) == state_of(chain)
    assert queries.market(separate.app, BTC)["open_interest"] == queries.market(chain.app, BTC)["open_interest"]


def test_the_fee_is_per_fill_and_a_batch_verifies_every_order(chain: Chain) -> None:
    fills = mixed_fills(chain)
    assert Code(chain.one(fills_tx(chain, fills, fee=chain.fee() * len(fills) - 1)).code) == Code.FEE_TOO_LOW
    forged = dict(fills[4][0])
    forged["sig"] = bytes(64)
    bad = fills[:4] + [(forged, *fills[4][1:])]
    assert Code(chain.one(fills_tx(chain, bad)).code) == Code.BAD_ORDER_SIGNATURE
    assert queries.positions(chain.app, signer("alice").address) == []  # nothing of the batch applied


def test_malformed_batches_are_invalid_fields(chain: Chain) -> None:
    fills = mixed_fills(chain)
    for bad_msg in ({"fills": []}, {"fills": "x"}, {"fills": [{"maker": 1}]}, {"fills": [[1, 2, 3, 4]]}, {}):
        raw = builders.build_tx(signer("venue"), chain.cid(), "fills", bad_msg, fee=chain.fee(), expiry=chain.expiry())
        assert Code(chain.one(raw).code) == Code.INVALID_FIELD, bad_msg
    too_many = fills_tx(chain, [fills[0]] * (MAX_FILLS + 1))
    assert Code(chain.one(too_many).code) in (Code.INVALID_FIELD, Code.TX_TOO_LARGE)
    envelope = decode(fills_tx(chain, fills))
    body = decode(envelope["body"])
    body["msg"]["fills"][2]["size"] = 0
    raw = builders.build_tx(signer("venue"), chain.cid(), "fills", body["msg"], fee=chain.fee() * 5,
                            expiry=chain.expiry())
    assert Code(chain.one(raw).code) == Code.INVALID_FIELD
    assert "fills[2].size" in chain.one(raw).log


def test_max_fills_fit_in_a_tx(chain: Chain) -> None:
    a, b = signer("alice"), signer("bob")
    fills = [(chain.order(a, BTC, "buy", 10, P, n), chain.order(b, BTC, "sell", 10, P, n), 10, P)
             for n in range(MAX_FILLS)]
    raw = fills_tx(chain, fills)
    assert len(decode_tx(raw, chain.cid()).orders()) == 2 * MAX_FILLS
    result = chain.one(raw)
    assert result.ok and [e["type"] for e in result.events] == ["trade"] * MAX_FILLS
    assert queries.positions(chain.app, a.address)[0]["size"] == 10 * MAX_FILLS


def test_batch_and_single_trades_reach_the_same_app_hash_on_two_nodes() -> None:
    first, second = Chain(make_genesis(balances=BALANCES)), Chain(make_genesis(balances=BALANCES))
    txs = [fills_tx(first, mixed_fills(first))]
    assert encode(first.block(txs)[0].events) == encode(second.block(txs)[0].events)
    assert first.app.app_hash == second.app.app_hash


def test_mempool_priority_is_the_fee_per_fill(chain: Chain) -> None:
    fills = mixed_fills(chain)
    floor = chain.fee()
    batch = chain.app.check_tx(fills_tx(chain, fills))
    transfer = chain.app.check_tx(builders.build_transfer_tx(signer("alice"), chain.cid(), signer("bob").address,
                                                             "USDC", 1, fee=floor, expiry=chain.expiry()))
    assert batch.ok and transfer.ok
    assert batch.priority == transfer.priority == floor  # 5 fills at the floor rank as one tx at it
    assert chain.app.check_tx(fills_tx(chain, fills, fee=floor * 10)).priority == floor * 2
