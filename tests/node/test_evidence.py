"""The evidence pool: only real, fresh, new double signs are kept, proposed and accepted."""

from __future__ import annotations

import dataclasses

from primitives.crypto import PrivateKey, Signer
from consensus.types import BlockID, DuplicateVoteEvidence, Vote, VoteType
from consensus.validators import Validator, ValidatorSet
from node.evidence import EVIDENCE_MAX_AGE, EvidencePool
from node.verifier import CachedVerifier

CHAIN = "evidence-test"
KEYS = [Signer(PrivateKey(bytes([i + 1]) * 32)) for i in range(4)]
VALIDATORS = ValidatorSet.from_genesis(Validator.from_public_key(k.public_key, 10) for k in KEYS)


def vote(index: int, block: bytes | None, height: int = 5, signer: Signer | None = None) -> Vote:
    validator = VALIDATORS.validators[index]
    unsigned = Vote(VoteType.PRECOMMIT, height, 0, None if block is None else BlockID(block), 1,
                    validator.address, index)
    key = signer or next(k for k in KEYS if k.address == validator.address)
    return dataclasses.replace(unsigned, signature=key.sign(unsigned.sign_bytes(CHAIN)))


def double_sign(index: int = 0, height: int = 5) -> DuplicateVoteEvidence:
    return DuplicateVoteEvidence.of(vote(index, b"\x01" * 32, height), vote(index, b"\x02" * 32, height))


def pool() -> EvidencePool:
    return EvidencePool(CHAIN, lambda h: VALIDATORS, CachedVerifier())


def test_real_double_sign_is_kept_once_and_proposed() -> None:
    evidence_pool = pool()
    evidence = double_sign()
    assert evidence_pool.add(evidence, 6)
    assert not evidence_pool.add(evidence, 6)
    assert evidence_pool.for_block() == [evidence]
    assert evidence_pool.block_ok([evidence], 6)
    assert not evidence_pool.block_ok([evidence, evidence], 6)  # repeated inside a block


def test_forged_or_stale_evidence_is_refused() -> None:
    evidence_pool = pool()
    stranger = Signer(PrivateKey(b"\x55" * 32))
    forged = DuplicateVoteEvidence.of(vote(0, b"\x01" * 32),
                                      vote(0, b"\x02" * 32, signer=stranger))
    assert not evidence_pool.valid(forged, 6)
    assert not evidence_pool.valid(double_sign(height=5), 5 + EVIDENCE_MAX_AGE + 1)
    assert not evidence_pool.valid(double_sign(height=7), 6)  # from the future


def test_committed_evidence_is_not_proposed_or_accepted_again() -> None:
    evidence_pool = pool()
    evidence = double_sign()
    evidence_pool.add(evidence, 6)
    evidence_pool.mark_committed([evidence])
    assert evidence_pool.for_block() == []
    assert not evidence_pool.block_ok([evidence], 7)
    assert not evidence_pool.add(evidence, 7)
