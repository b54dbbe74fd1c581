"""Every tx kind through ClearingApp: its effect, and every rejection code it can produce."""

from __future__ import annotations

import pytest

import primitives.codec
from primitives.codec import decode, encode
from state import builders, queries
from state.codes import Code
from state.txs import MAX_TX_BYTES, decode_tx
from tests.state.helpers import USDC, Chain, make_genesis, signer

BTC = "BTC-PERP"
P = 500_000


@pytest.fixture
def chain() -> Chain:
    return Chain(make_genesis(balances={"alice": 10_000 * USDC, "bob": 10_000 * USDC, "venue": 100 * USDC}))


def tx(chain: Chain, kind: str, who: str = "alice", **kw):
    build = getattr(builders, f"build_{kind}_tx")
    kw.setdefault("fee", chain.fee())
    kw.setdefault("expiry", chain.expiry())
    kw.setdefault("nonce", chain.nonce())
    return build(signer(who), chain.cid(), **kw)


def trade(chain: Chain, size=1000, price=P, maker=None, taker=None, **kw):
    maker = maker or chain.order(signer("alice"), BTC, "buy", 10_000, P, 1)
    taker = taker or chain.order(signer("bob"), BTC, "sell", 10_000, P, 1)
    return chain.trade(signer("venue"), maker, taker, size, price, **kw)


def code(chain: Chain, raw: bytes) -> Code:
    return Code(chain.one(raw).code)


# --- envelope and ante -------------------------------------------------------------------


def test_envelope_rejections(chain: Chain) -> None:
    good = tx(chain, "transfer", to=signer("bob").address, asset="USDC", amount=1)
    assert code(chain, b"\xc1junk") == Code.DECODE_ERROR
    assert code(chain, b"\x00" * (MAX_TX_BYTES + 1)) == Code.TX_TOO_LARGE
    other = builders.build_transfer_tx(signer("alice"), "other-chain", signer("bob").address, "USDC", 1,
                                       fee=chain.fee(), expiry=chain.expiry())
    assert code(chain, other) == Code.WRONG_CHAIN
    envelope = decode(good)
    envelope["sig"] = bytes([envelope["sig"][0] ^ 1]) + envelope["sig"][1:]
    assert code(chain, encode(envelope)) == Code.BAD_SIGNATURE
    bogus = builders.build_tx(signer("alice"), chain.cid(), "bogus", {}, fee=chain.fee(), expiry=chain.expiry())
    assert code(chain, bogus) == Code.UNKNOWN_KIND
    assert code(chain, tx(chain, "transfer", to=b"short", asset="USDC", amount=1)) == Code.INVALID_FIELD
    assert code(chain, tx(chain, "transfer", to=signer("bob").address, asset="USDC", amount=0)) == Code.INVALID_FIELD


def test_ante_rejections(chain: Chain) -> None:
    bob = signer("bob").address
    chain.block()
    assert code(chain, tx(chain, "transfer", to=bob, asset="USDC", amount=1, expiry=chain.height)) == Code.TX_EXPIRED
    far = chain.height + 1 + chain.app.ledger.globals.replay_window + 1
    assert code(chain, tx(chain, "transfer", to=bob, asset="USDC", amount=1, expiry=far)) == Code.EXPIRY_TOO_FAR
    assert code(chain, tx(chain, "transfer", to=bob, asset="USDC", amount=1, fee=0)) == Code.FEE_TOO_LOW
    assert code(chain, tx(chain, "transfer", "nobody", to=bob, asset="USDC", amount=1)) == Code.INSUFFICIENT_FEE_FUNDS
    once = tx(chain, "transfer", to=bob, asset="USDC", amount=1)
    assert chain.block([once, once])[1].code == Code.DUPLICATE_TX
    assert Code(chain.app.check_tx(once).code) == Code.DUPLICATE_TX


def test_many_concurrent_txs_from_one_account_need_no_nonce_order(chain: Chain) -> None:
    bob = signer("bob").address
    txs = [tx(chain, "transfer", to=bob, asset="USDC", amount=1, nonce=n) for n in range(300)]
    assert all(chain.app.check_tx(t).ok for t in txs)
    results = chain.block(list(reversed(txs)))
    assert all(r.ok for r in results)
    assert queries.account(chain.app, bob)["quote"] == 10_000 * USDC + 300


def test_check_tx_reports_priority_and_sender_and_does_not_touch_state(chain: Chain, monkeypatch) -> None:
    import state.txs as txs_module

    calls = []
    real = txs_module.verify
    monkeypatch.setattr(txs_module, "verify", lambda *a: calls.append(1) or real(*a))
    raw = tx(chain, "transfer", to=signer("bob").address, asset="USDC", amount=5, fee=7777)
    before = chain.app.app_hash
    result = chain.app.check_tx(raw)
    assert result.ok and result.priority == 7777 and result.sender == signer("alice").address
    assert chain.app.app_hash == before and queries.account(chain.app, signer("bob").address)["quote"] == 10_000 * USDC
    assert chain.one(raw).ok
    assert len(calls) == 1  # verified once per node: deliver reused the verdict


def test_refused_txs_leave_no_cached_copy_or_verdict(chain: Chain) -> None:
    """A flood of invalid txs (garbage, bad signatures) must not grow the node's memory: only
    txs that pass are remembered (issue 20: ~94 MB kept after invalid broadcast_tx_commit)."""
    app = chain.app
    decoded, verdicts = len(app._decoded), len(app._verdicts)
    good = tx(chain, "transfer", to=signer("bob").address, asset="USDC", amount=1)
    for index in range(200):
        assert not app.check_tx(index.to_bytes(4, "big") + b"\xc1junk").ok
        envelope = decode(tx(chain, "transfer", to=signer("bob").address, asset="USDC", amount=1))
        envelope["sig"] = bytes([envelope["sig"][0] ^ 1]) + envelope["sig"][1:]
        assert app.check_tx(encode(envelope)).code == Code.BAD_SIGNATURE
    assert (len(app._decoded), len(app._verdicts)) == (decoded, verdicts)
    assert app.check_tx(good).ok
    assert (len(app._decoded), len(app._verdicts)) == (decoded + 1, verdicts + 1)


# --- collateral ---------------------------------------------------------------------------


def test_transfer(chain: Chain) -> None:
    alice, bob = signer("alice").address, signer("bob").address
    assert chain.one(tx(chain, "transfer", to=bob, asset="USDC", amount=250 * USDC)).ok
    assert queries.account(chain.app, bob)["quote"] == 10_250 * USDC
    assert queries.account(chain.app, alice)["quote"] == 9_750 * USDC - chain.fee()
    assert code(chain, tx(chain, "transfer", to=bob, asset="DOGE", amount=1)) == Code.UNKNOWN_ASSET
    assert code(chain, tx(chain, "transfer", to=alice, asset="USDC", amount=1)) == Code.SELF_TRANSFER
    assert code(chain, tx(chain, "transfer", to=bob, asset="USDC", amount=10**12)) == Code.INSUFFICIENT_BALANCE
    assert code(chain, tx(chain, "transfer", to=bob, asset="BTC", amount=1)) == Code.INSUFFICIENT_BALANCE


def _deposit(chain: Chain, operator: int, ext: str = "eth:0xabc", asset: str = "BTC", amount: int = 10**8):
    return tx(chain, "deposit", f"v{operator}", external_id=ext, account=signer("carol").address, asset=asset,
              amount=amount)


def test_deposit_needs_two_thirds_of_operators_and_is_deduplicated(chain: Chain) -> None:
    carol = signer("carol").address
    assert code(chain, _deposit(chain, 0).replace(b"", b"") and tx(
        chain, "deposit", "alice", external_id="x", account=carol, asset="BTC", amount=1)) == Code.NOT_BRIDGE_OPERATOR
    assert chain.one(_deposit(chain, 0)).ok and chain.one(_deposit(chain, 1)).ok
    assert queries.account(chain.app, carol) is None  # 2 of 4 equal powers is not > 2/3
    assert code(chain, _deposit(chain, 1)) == Code.DEPOSIT_ALREADY_ATTESTED
    result = chain.one(_deposit(chain, 2))
    assert result.ok and [e["type"] for e in result.events] == ["deposit_attested", "deposit"]
    assert queries.account(chain.app, carol)["collateral"] == {"BTC": 10**8}
    assert code(chain, _deposit(chain, 3)) == Code.DEPOSIT_ALREADY_CREDITED
    assert code(chain, _deposit(chain, 3, ext="e2", asset="XYZ")) == Code.UNKNOWN_ASSET
    # 1 BTC at 50,000 with a 90% weight backs 45,000 of equity
    assert queries.account_health(chain.app, carol)["equity"] == 45_000 * USDC


def test_withdraw_leaves_a_receipt_and_keeps_initial_margin(chain: Chain) -> None:
    a, b = signer("alice"), signer("bob")
    big = trade(chain, size=100_000, maker=chain.order(a, BTC, "buy", 100_000, P, 1),
                taker=chain.order(b, BTC, "sell", 100_000, P, 1))
    assert chain.one(big).ok  # alice long 1 BTC: IMR 2,500
    result = chain.one(tx(chain, "withdraw", asset="USDC", amount=1_000 * USDC, destination="eth:0xalice"))
    assert result.ok
    receipt = queries.withdrawal(chain.app, 1)
    assert receipt["amount"] == 1_000 * USDC and receipt["account"] == signer("alice").address
    assert queries.insurance_fund(chain.app)["withdrawals"] == {"USDC": 1_000 * USDC}
    assert code(chain, tx(chain, "withdraw", asset="USDC", amount=8_000 * USDC, destination="x")) == \
        Code.INSUFFICIENT_MARGIN
    assert code(chain, tx(chain, "withdraw", asset="USDC", amount=10**12, destination="x")) == Code.INSUFFICIENT_BALANCE
    assert code(chain, tx(chain, "withdraw", asset="SOL", amount=1, destination="x")) == Code.UNKNOWN_ASSET


# --- trades -------------------------------------------------------------------------------


def test_trade_moves_positions_quote_and_fees(chain: Chain) -> None:
    result = chain.one(trade(chain, size=1000))
    assert result.ok
    alice, bob = (queries.positions(chain.app, signer(n).address) for n in ("alice", "bob"))
    assert alice[0]["size"] == 1000 and bob[0]["size"] == -1000
    fees = queries.insurance_fund(chain.app)["fee_pool"]
    assert fees == chain.fee() + 50_000 + 250_000  # the venue's tx fee, maker 1 bp and taker 5 bp of $500
    assert queries.market(chain.app, BTC)["open_interest"] == 1000


def test_trade_rejections(chain: Chain) -> None:
    chain.block()
    a, b = signer("alice"), signer("bob")
    o = chain.order
    cases = [
        (trade(chain, maker=o(a, "ETH-PERP", "buy", 1000, P, 1)), Code.MARKET_MISMATCH),
        (trade(chain, maker=o(a, "DOGE-PERP", "buy", 1000, P, 1), taker=o(b, "DOGE-PERP", "sell", 1000, P, 1)),
         Code.UNKNOWN_MARKET),
        (trade(chain, maker=o(a, BTC, "sell", 1000, P, 1)), Code.SIDE_MISMATCH),
        (trade(chain, taker=o(a, BTC, "sell", 1000, P, 2)), Code.SAME_ACCOUNT),
        (trade(chain, size=15), Code.NOT_LOT_MULTIPLE),
        (trade(chain, price=P + 5), Code.NOT_TICK_MULTIPLE),
        (trade(chain, maker=o(a, BTC, "buy", 1000, P, 1, expiry=chain.height)), Code.ORDER_EXPIRED),
        (trade(chain, maker=o(a, BTC, "buy", 1000, P, 1, expiry=chain.height + 10**6)), Code.ORDER_LIFETIME_TOO_LONG),
        (trade(chain, price=P + 10), Code.PRICE_OUTSIDE_LIMIT),
        (trade(chain, size=20_000), Code.ORDER_OVERFILL),
        (trade(chain, maker=o(a, BTC, "buy", 10_000_000, P, 1), taker=o(b, BTC, "sell", 10_000_000, P, 1),
               size=10_000_000), Code.INSUFFICIENT_MARGIN),
    ]
    for raw, expected in cases:
        assert code(chain, raw) == expected, expected
    forged = dict(o(a, BTC, "buy", 1000, P, 9))
    forged["sig"] = bytes(64)
    assert code(chain, trade(chain, maker=forged)) == Code.BAD_ORDER_SIGNATURE


def test_orders_fill_partially_then_overfill_cancel_and_id_reuse(chain: Chain) -> None:
    a = signer("alice")
    maker = chain.order(a, BTC, "buy", 3000, P, 7)
    assert chain.one(trade(chain, size=2000, maker=maker)).ok
    assert queries.order(chain.app, a.address, 7)["filled"] == 2000
    assert code(chain, trade(chain, size=2000, maker=maker)) == Code.ORDER_OVERFILL
    assert chain.one(trade(chain, size=1000, maker=maker)).ok
    assert code(chain, trade(chain, size=10, maker=chain.order(a, BTC, "buy", 4000, P, 7))) == \
        Code.ORDER_ID_REUSED
    assert chain.one(tx(chain, "cancel", "bob", order_id=1, order_expiry=chain.expiry(50))).ok
    assert code(chain, trade(chain, size=10)) == Code.ORDER_CANCELLED
    assert code(chain, tx(chain, "cancel", "bob", order_id=1, order_expiry=chain.expiry(50))) == Code.ORDER_CANCELLED
    assert code(chain, tx(chain, "cancel", "bob", order_id=2, order_expiry=chain.height)) == Code.ORDER_EXPIRED
    assert code(chain, tx(chain, "cancel", "bob", order_id=2, order_expiry=10**9)) == Code.ORDER_LIFETIME_TOO_LONG


def test_order_records_are_pruned_after_expiry(chain: Chain) -> None:
    expiry = chain.height + 3
    maker = chain.order(signer("alice"), BTC, "buy", 3000, P, 5, expiry=expiry)
    assert chain.one(trade(chain, size=1000, maker=maker)).ok
    for _ in range(3):
        chain.block()
    assert queries.order(chain.app, signer("alice").address, 5) is None


def test_stale_or_halted_market_accepts_only_risk_reducing_trades(chain: Chain) -> None:
    assert chain.one(trade(chain, size=1000)).ok
    staleness = chain.app.ledger.globals.risk.oracle_staleness_ms
    chain.block(dt_ms=staleness + 1)
    assert queries.market(chain.app, BTC)["status"] == "stale"
    assert code(chain, trade(chain, size=1000)) == Code.MARKET_NOT_ACTIVE
    a, b = signer("alice"), signer("bob")
    reduce = chain.trade(signer("venue"), chain.order(a, BTC, "sell", 500, P, 2), chain.order(b, BTC, "buy", 500, P, 2),
                         500, P)
    assert chain.one(reduce).ok
    chain.block(chain.prices({BTC: P}))
    chain.block()
    assert queries.market(chain.app, BTC)["status"] == "active"


# --- oracle, backstop, governance, evidence -------------------------------------------------


def test_oracle_reports_weighted_median_with_quorum(chain: Chain) -> None:
    cid, f = chain.cid(), chain.fee()
    reports = [builders.build_oracle_tx(signer(f"v{i}"), cid, {BTC: p}, fee=f, expiry=chain.expiry())
               for i, p in enumerate([501_000, 502_000, 510_000])]
    chain.block(reports[:2])
    chain.block()
    assert queries.prices(chain.app)[BTC]["price"] == P  # 2 of 4 is no quorum
    chain.block(reports[2:])
    chain.block()
    assert queries.prices(chain.app)[BTC]["price"] == 502_000
    assert code(chain, tx(chain, "oracle", "alice", prices={BTC: 1})) == Code.NOT_FEEDER
    assert code(chain, tx(chain, "oracle", "v0", prices={"NOPE": 1})) == Code.UNKNOWN_MARKET
    assert code(chain, tx(chain, "oracle", "v0", prices={BTC: 10**16})) == Code.INVALID_PRICE


def test_backstop_registration(chain: Chain) -> None:
    assert chain.one(tx(chain, "backstop", market=BTC, max_size=1000, discount_ppm=10_000)).ok
    assert chain.app.ledger.backstops[BTC][signer("alice").address] == [1000, 10_000]
    assert code(chain, tx(chain, "backstop", market="NOPE", max_size=10, discount_ppm=1)) == Code.UNKNOWN_MARKET
    assert code(chain, tx(chain, "backstop", market=BTC, max_size=15, discount_ppm=1)) == Code.NOT_LOT_MULTIPLE
    assert code(chain, tx(chain, "backstop", market=BTC, max_size=10, discount_ppm=40_000)) == Code.INVALID_BACKSTOP
    assert code(chain, tx(chain, "backstop", "bob", market=BTC, max_size=0, discount_ppm=1)) == Code.INVALID_BACKSTOP
    assert chain.one(tx(chain, "backstop", market=BTC, max_size=0, discount_ppm=0)).ok
    assert signer("alice").address not in chain.app.ledger.backstops[BTC]


def test_votes_change_params_markets_and_validators(chain: Chain) -> None:
    vote = lambda i, p: tx(chain, "vote", f"v{i}", proposal=p)
    risk = builders.risk_proposal("raise fee", liquidation_fee_ppm=12_000)
    assert code(chain, vote(0, risk).replace(b"", b"") and tx(chain, "vote", "alice", proposal=risk)) == \
        Code.NOT_VALIDATOR
    assert chain.one(vote(0, risk)).ok
    assert code(chain, vote(0, risk)) == Code.ALREADY_VOTED
    chain.block([vote(1, risk)])
    assert chain.app.ledger.globals.risk.liquidation_fee_ppm == 10_000  # 2 of 4: not yet
    chain.block([vote(2, risk)])
    assert chain.app.ledger.globals.risk.liquidation_fee_ppm == 12_000
    assert any(e["type"] == "proposal_applied" for e in chain.end_events)
    bad = builders.risk_proposal("bad", liquidation_fee_ppm=-1)
    assert code(chain, vote(0, bad)) == Code.INVALID_PROPOSAL
    market = chain.genesis.to_dict()["app_state"]["markets"][0] | {"status": "halted"}
    halt = builders.market_proposal("halt BTC", market)
    chain.block([vote(i, halt) for i in range(3)])
    assert queries.market(chain.app, BTC)["status"] == "halted"
    assert code(chain, trade(chain)) == Code.MARKET_NOT_ACTIVE
    newcomer = signer("v9")
    add = builders.validator_proposal("add v9", newcomer.public_key, 10, "v9")
    chain.block([vote(i, add) for i in range(3)])
    assert [(u.pub_key, u.power) for u in chain.last_end.validator_updates] == [(newcomer.public_key, 10)]
    assert newcomer.address in chain.app.ledger.globals.validator_power()


def test_evidence_jails_the_validator(chain: Chain) -> None:
    v1 = signer("v1")
    chain.block(evidence=[(v1.address, 1)])
    assert [(u.pub_key, u.power) for u in chain.last_end.validator_updates] == [(v1.public_key, 0)]
    assert v1.address not in chain.app.ledger.globals.validator_power()
    assert code(chain, tx(chain, "oracle", "v1", prices={BTC: P})) == Code.NOT_FEEDER


def test_decoded_tx_fields_round_trip() -> None:
    c = Chain(make_genesis())
    raw = builders.build_withdraw_tx(signer("a"), c.cid(), "USDC", 5, "dest", fee=1, expiry=9, nonce=3)
    t = decode_tx(raw, c.cid())
    assert (t.kind, t.fee, t.expiry, t.nonce, t.msg.amount, t.sender) == ("withdraw", 1, 9, 3, 5, signer("a").address)


def test_an_order_filled_by_many_trades_is_verified_once(chain: Chain, monkeypatch) -> None:
    import state.txs as txs_module

    calls = []
    real = txs_module.verify
    monkeypatch.setattr(txs_module, "verify", lambda *a: calls.append(1) or real(*a))
    maker = chain.order(signer("alice"), BTC, "buy", 10_000, P, 3)
    takers = [chain.order(signer("bob"), BTC, "sell", 1000, P, 10 + i) for i in range(4)]
    results = chain.block([trade(chain, size=1000, maker=maker, taker=t) for t in takers])
    assert all(r.ok for r in results)
    assert len(calls) == 4 + 1 + 4  # 4 venue signatures, the maker once, 4 takers


def test_check_tx_turns_away_privileged_kinds_from_outsiders(chain: Chain) -> None:
    assert Code(chain.app.check_tx(tx(chain, "oracle", "alice", prices={BTC: P})).code) == Code.NOT_FEEDER
    deposit = tx(chain, "deposit", "alice", external_id="e", account=signer("bob").address, asset="USDC", amount=1)
    assert Code(chain.app.check_tx(deposit).code) == Code.NOT_BRIDGE_OPERATOR
    vote = tx(chain, "vote", "alice", proposal=builders.min_fee_proposal("x", 5))
    assert Code(chain.app.check_tx(vote).code) == Code.NOT_VALIDATOR
    assert chain.app.check_tx(tx(chain, "oracle", "v0", prices={BTC: P})).ok


def test_a_cancel_outlives_the_expiry_of_an_earlier_order_with_the_same_id(chain: Chain) -> None:
    a = signer("alice")
    early = chain.order(a, BTC, "buy", 3000, P, 8, expiry=chain.height + 3)
    assert chain.one(trade(chain, size=1000, maker=early)).ok
    assert chain.one(tx(chain, "cancel", order_id=8, order_expiry=chain.height + 30)).ok
    for _ in range(4):
        chain.block()
    assert queries.order(chain.app, a.address, 8)["cancelled"]
    later = chain.order(a, BTC, "buy", 3000, P, 8, expiry=chain.height + 20)
    assert code(chain, trade(chain, size=1000, maker=later)) == Code.ORDER_CANCELLED


def test_too_deeply_nested_vote_is_rejected_not_raised(monkeypatch) -> None:
    chain = Chain(make_genesis())
    proposal: object = {"kind": "set_min_fee", "min_fee": 1}
    for _ in range(40):
        proposal = {"kind": "set_min_fee", "nested": proposal}
    with monkeypatch.context() as patch:  # a hostile client's encoder has no depth limit
        patch.setattr(primitives.codec, "MAX_DEPTH", 100)
        tx = builders.build_vote_tx(signer("v0"), chain.cid(), proposal, fee=chain.fee(),
                                    expiry=chain.expiry(), nonce=1)
    assert chain.app.check_tx(tx).code == Code.DECODE_ERROR
    result = chain.one(tx)  # deliver_tx must answer with a code, on every node alike
    assert result.code == Code.DECODE_ERROR and "nesting" in result.log


def test_text_fields_are_ascii_whatever_the_unicode_version() -> None:
    chain = Chain(make_genesis(balances={"alice": 1_000_000_000}))
    # U+1FA75 is printable under Unicode 15 (Python 3.12+) but not 14 (3.11): refuse it on all.
    tx = builders.build_withdraw_tx(signer("alice"), chain.cid(), "USDC", 1, "dest\U0001FA75",
                                    fee=chain.fee(), expiry=chain.expiry(), nonce=1)
    result = chain.app.check_tx(tx)
    assert result.code == Code.INVALID_FIELD and "ASCII" in result.log
