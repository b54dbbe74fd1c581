"""Hostile bytes never crash the app: every input is decoded into a tx or rejected with a code."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from primitives.codec import encode
from state import builders
from state.codes import TxRejected
from state.txs import decode_tx
from tests.state.helpers import USDC, Chain, make_genesis, signer

CHAIN = Chain(make_genesis(balances={"alice": 1_000 * USDC}), check=False)
CID = CHAIN.cid()
SAMPLES = [
    builders.build_trade_tx(signer("v"), CID, CHAIN.order(signer("a"), "BTC-PERP", "buy", 10, 500_000, 1),
                            CHAIN.order(signer("b"), "BTC-PERP", "sell", 10, 500_000, 1), 10, 500_000,
                            fee=1000, expiry=5, nonce=1),
    builders.build_transfer_tx(signer("alice"), CID, signer("b").address, "USDC", 5, fee=1000, expiry=5, nonce=2),
    builders.build_vote_tx(signer("v0"), CID, builders.risk_proposal("t", liquidation_fee_ppm=1), fee=1000,
                           expiry=5, nonce=3),
    builders.build_oracle_tx(signer("v0"), CID, {"BTC-PERP": 5}, fee=1000, expiry=5, nonce=4),
    builders.build_fills_tx(signer("v"), CID, [
        (CHAIN.order(signer("a"), "BTC-PERP", "buy", 10, 500_000, n), CHAIN.order(signer("b"), "BTC-PERP", "sell", 10,
                                                                                   500_000, n), 10, 500_000)
        for n in (1, 2)], fee=2000, expiry=5, nonce=5),
]


def _decodes_or_rejects(data: bytes) -> None:
    try:
        decode_tx(data, CID)
    except TxRejected:
        pass
    assert CHAIN.app.check_tx(data).code is not None


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SAMPLES), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1,
                                          max_size=4))
def test_mutated_txs_are_rejected_cleanly(sample: bytes, flips: list) -> None:
    data = bytearray(sample)
    for position, value in flips:
        data[position % len(data)] = value
    _decodes_or_rejects(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.binary(max_size=40)
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20))
def test_arbitrary_canonical_values_are_rejected_cleanly(value) -> None:
    _decodes_or_rejects(encode(value))
    _decodes_or_rejects(encode({"body": encode(value), "sig": bytes(64)}))
    for kind in ("trade", "fills"):
        _decodes_or_rejects(encode({"body": encode({"chain_id": CID, "kind": kind, "signer": bytes(32), "fee": 1,
                                                    "expiry": 1, "nonce": 1, "msg": value}), "sig": bytes(64)}))


def test_deliver_of_garbage_in_a_block_is_a_result_not_an_exception() -> None:
    chain = Chain(make_genesis())
    results = chain.block([b"", b"\x90", encode({"body": b"", "sig": b""}), SAMPLES[0][:-3]])
    assert all(not r.ok for r in results)


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.binary(max_size=40) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=25), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["set_risk", "set_market", "set_validator", "set_min_fee"]),
       st.dictionaries(st.sampled_from(["title", "params", "market", "pub_key", "power", "name", "min_tx_fee"]),
                       VALUES, max_size=5))
def test_hostile_proposals_are_rejected_cleanly(kind: str, fields: dict) -> None:
    proposal = {**fields, "kind": kind}
    raw = builders.build_vote_tx(signer("v0"), CID, proposal, fee=CHAIN.fee(), expiry=CHAIN.expiry())
    result = CHAIN.one(raw)
    assert result.code is not None
