"""Regressions for consensus-critical findings of the determinism review."""

import consensus.codec
from state import builders
from state.codes import Code

from tests.state.helpers import Chain, make_genesis, signer


def test_too_deeply_nested_vote_is_rejected_not_raised(monkeypatch) -> None:
    chain = Chain(make_genesis())
    proposal: object = {"kind": "set_min_fee", "min_fee": 1}
    for _ in range(40):
        proposal = {"kind": "set_min_fee", "nested": proposal}
    with monkeypatch.context() as patch:  # a hostile client's encoder has no depth limit
        patch.setattr(consensus.codec, "MAX_DEPTH", 100)
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
