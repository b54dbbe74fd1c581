"""Proposals approved by more than 2/3 of validator power (state/governance.py)."""

from state import builders
from tests.state.helpers import Chain, make_genesis, signer


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
