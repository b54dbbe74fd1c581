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


def _vote(chain: Chain, voter: str, proposal: dict) -> bytes:
    return builders.build_vote_tx(signer(voter), chain.cid(), proposal, fee=chain.fee(),
                                  expiry=chain.expiry(), nonce=chain.nonce())


def test_removing_a_jailed_or_unknown_validator_emits_no_update() -> None:
    chain = Chain(make_genesis())
    v1 = signer("v1")
    chain.block(evidence=[(v1.address, 1)])
    assert [(u.pub_key, u.power) for u in chain.last_end.validator_updates] == [(v1.public_key, 0)]
    remove_jailed = builders.validator_proposal("remove v1", v1.public_key, 0, "v1")
    stranger = builders.validator_proposal("remove nobody", signer("nobody").public_key, 0, "x")
    chain.block([_vote(chain, f"v{i}", p) for p in (remove_jailed, stranger) for i in (0, 2, 3)])
    # The consensus set no longer holds v1 (and never held the stranger): a second removal
    # would be refused by every node's validator set and halt the chain.
    assert chain.last_end.validator_updates == []
    assert v1.address not in chain.app.ledger.globals.validators


def test_evidence_never_jails_the_last_active_power() -> None:
    chain = Chain(make_genesis(validators=2))
    v0, v1 = signer("v0"), signer("v1")
    chain.block(evidence=[(v0.address, 1), (v1.address, 1)])
    jailed = [u.pub_key for u in chain.last_end.validator_updates]
    assert len(jailed) == 1  # one of the two stays, so the chain can go on
    assert chain.app.ledger.globals.validator_power()
