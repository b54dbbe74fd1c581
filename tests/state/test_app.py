"""The application's block steps (state/app.py): evidence and jailing."""

from tests.state.helpers import Chain, make_genesis, signer


def test_evidence_never_jails_the_last_active_power() -> None:
    chain = Chain(make_genesis(validators=2))
    v0, v1 = signer("v0"), signer("v1")
    chain.block(evidence=[(v0.address, 1), (v1.address, 1)])
    jailed = [u.pub_key for u in chain.last_end.validator_updates]
    assert len(jailed) == 1  # one of the two stays, so the chain can go on
    assert chain.app.ledger.globals.validator_power()
