"""Tx handlers (state/README.md, "Risk engine" and "Transactions"): audit items (b), (c) and (d).

(b) fees paid from haircut collateral; (c) a cancel ends the order until its real expiry;
(d) deposits cannot grow a total past 2**62, so commit never fails.
"""

from __future__ import annotations

from state import builders
from state.codes import Code
from state.queries import invariants
from tests.state.helpers import USDC, Chain, make_genesis, signer

BTC = "BTC-PERP"
P = 500_000
SAT = 10**8  # BTC collateral: 8 decimals
AMOUNT_TOO_LARGE = int(getattr(Code, "AMOUNT_TOO_LARGE", 27))


def ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def addr(name: str) -> bytes:
    return signer(name).address


def funded() -> Chain:
    return Chain(make_genesis(balances={"alice": 10_000 * USDC, "bob": 10_000 * USDC, "venue": 100 * USDC}))


def deposit(chain: Chain, external_id: str, who: str, asset: str, amount: int, operators=range(3)) -> list[bytes]:
    return [builders.build_deposit_tx(signer(f"v{v}"), chain.cid(), external_id, addr(who), asset, amount,
                                      fee=chain.fee(), expiry=chain.expiry(), nonce=chain.nonce())
            for v in operators]


# --- (b) an account holding only haircut collateral can pay fees --------------------------------


def test_collateral_only_account_can_withdraw_its_collateral_and_cancel_paying_fees_from_it() -> None:
    chain = funded()
    chain.block(deposit(chain, "btc-1", "carol", "BTC", SAT))  # 1 BTC, no quote at all
    carol = chain.app.ledger.accounts[addr("carol")]
    assert carol.quote == 0 and carol.collateral == {"BTC": SAT}
    fee = chain.fee()
    withdraw = builders.build_withdraw_tx(signer("carol"), chain.cid(), "BTC", SAT // 2, "btc-address", fee=fee,
                                          expiry=chain.expiry(), nonce=chain.nonce())
    cancel = builders.build_cancel_tx(signer("carol"), chain.cid(), 7, chain.expiry(50), fee=fee,
                                      expiry=chain.expiry(), nonce=chain.nonce())
    results = chain.block([withdraw, cancel])
    assert [r.code for r in results] == [Code.OK, Code.OK], [r.log for r in results]
    assert chain.app.ledger.globals.withdrawals.get("BTC") == SAT // 2
    # the 2 fees (2,000 micro-USDC) left quote at -2,000 with no position: at the block's end the fund
    # takes just enough BTC at its haircut value. 1 sat = 10**-8 BTC * 50,000 USDC * 0.9 = 450 micro-USDC
    per_sat = 1 * P * 900_000 // (10**6 * 10**3)  # amount * price * num // den, price 1 = $0.1
    assert per_sat == 450
    sats = ceil_div(2 * fee, per_sat)  # 5
    conversions = [e["attrs"] for e in chain.end_events if e["type"] == "collateral_conversion"]
    assert [(c["account"], c["amount"], c["value"]) for c in conversions] == [(addr("carol"), sats, sats * per_sat)]
    carol = chain.app.ledger.accounts[addr("carol")]
    assert carol.quote == sats * per_sat - 2 * fee == 250
    assert carol.collateral == {"BTC": SAT // 2 - sats}
    assert chain.app.ledger.globals.insurance_collateral.get("BTC") == sats
    assert invariants(chain.app) == []
    # fees may use the collateral, withdrawals of quote may not borrow on it
    borrow = builders.build_withdraw_tx(signer("carol"), chain.cid(), "USDC", 1 * USDC, "bank", fee=fee,
                                        expiry=chain.expiry(), nonce=chain.nonce())
    assert Code(chain.one(borrow).code) == Code.INSUFFICIENT_BALANCE
    assert chain.app.ledger.accounts[addr("carol")].quote >= 0


# --- (c) a cancel ends the order until the order's own expiry --------------------------------------


def _cancel_tx(chain: Chain, who: str, order, order_id: int, claimed_expiry: int) -> bytes:
    kw = dict(fee=chain.fee(), expiry=chain.expiry(), nonce=chain.nonce())
    try:
        return builders.build_cancel_tx(signer(who), chain.cid(), order_id, claimed_expiry, order=order, **kw)
    except TypeError:  # a builder without ``order=``: what a client could send before
        return builders.build_cancel_tx(signer(who), chain.cid(), order_id, claimed_expiry, **kw)


def _fill_later(chain: Chain, order, claimed: int):
    for _ in range(4):  # past the claimed expiry
        chain.block()
    assert chain.height > claimed
    taker = chain.order(signer("bob"), BTC, "sell", 1_000, P, 9)
    return chain.one(chain.trade(signer("venue"), order, taker, 1_000, P))


def test_cancel_given_the_order_ends_it_until_its_real_expiry_whatever_expiry_is_claimed() -> None:
    chain = funded()
    real_expiry = chain.height + 50
    order = chain.order(signer("alice"), BTC, "buy", 1_000, P, 9, expiry=real_expiry)
    claimed = chain.height + 2  # earlier than the order's real expiry
    cancel = chain.one(_cancel_tx(chain, "alice", order, 9, claimed))
    if not cancel.ok:  # a cancel whose claim contradicts the signed order may be refused, visibly ...
        assert cancel.code != Code.OK
        cancel = chain.one(_cancel_tx(chain, "alice", order, 9, real_expiry))  # ... and the true one works
        assert cancel.ok, cancel.log
    late = _fill_later(chain, order, claimed)  # an accepted cancel ends the order: it never fills later
    assert BTC not in chain.app.ledger.accounts[addr("alice")].positions
    assert Code(late.code) == Code.ORDER_CANCELLED, late.log


def test_accepted_cancel_without_the_order_still_ends_it_whatever_expiry_is_claimed() -> None:
    """state/README.md: "a signed order fills ... until its expiry ... and a cancel ends it"."""
    chain = funded()
    order = chain.order(signer("alice"), BTC, "buy", 1_000, P, 9, expiry=chain.height + 50)
    claimed = chain.height + 2
    cancel = builders.build_cancel_tx(signer("alice"), chain.cid(), 9, claimed, fee=chain.fee(),
                                      expiry=chain.expiry(), nonce=chain.nonce())
    result = chain.one(cancel)
    assert result.ok, result.log
    late = _fill_later(chain, order, claimed)
    assert BTC not in chain.app.ledger.accounts[addr("alice")].positions
    assert Code(late.code) == Code.ORDER_CANCELLED, late.log


# --- (d) deposits are bounded so that commit cannot fail -----------------------------------------


def test_deposit_that_would_take_the_total_past_2_pow_62_is_refused_and_commit_works() -> None:
    chain = funded()
    total = chain.app.ledger.globals.deposits["USDC"]
    room = 2**62 - total
    chain.block(deposit(chain, "big-1", "whale", "USDC", room))  # exactly up to the bound: accepted
    assert chain.app.ledger.globals.deposits["USDC"] == 2**62
    assert chain.app.ledger.accounts[addr("whale")].quote == room
    # one more deposit of 2**62 would take the total (and the whale's quote) past 2**63
    app = chain.app
    chain.time_ms += 1_000
    app.begin_block(chain.height + 1, chain.time_ms, b"", [])
    results = [app.deliver_tx(tx) for tx in deposit(chain, "big-2", "whale", "USDC", 2**62)]
    assert app.ledger.account(addr("whale")).quote == room
    assert AMOUNT_TOO_LARGE in [r.code for r in results], [r.log for r in results]
    assert not any(e["type"] == "deposit" for r in results for e in r.events)
    app.end_block()
    app.commit()  # does not raise
    assert app.ledger.globals.deposits["USDC"] == 2**62
    assert invariants(app) == []
    assert chain.one(builders.build_transfer_tx(signer("whale"), chain.cid(), addr("bob"), "USDC", 1 * USDC,
                                                fee=chain.fee(), expiry=chain.expiry(), nonce=chain.nonce())).ok
