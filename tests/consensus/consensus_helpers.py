"""Helpers shared by the consensus tests (a uniquely named module: tests/ is not a package)."""

from __future__ import annotations

from dataclasses import replace

from primitives.crypto import PrivateKey, Signer
from primitives.hashing import sha256
from consensus.types import BlockID, Vote, VoteType
from consensus.validators import Validator, ValidatorSet

CHAIN = "test-chain"


class Keys:
    """Four validators with powers 4, 3, 2, 1 (total 10) and helpers to sign votes."""

    def __init__(self) -> None:
        self.signers = [Signer(PrivateKey(sha256(b"consensus-test-%d" % i))) for i in range(5)]
        powers = [4, 3, 2, 1]
        self.valset = ValidatorSet.from_genesis(
            [Validator.from_public_key(s.public_key, p) for s, p in zip(self.signers, powers)]
        )
        self.outsider = self.signers[4]

    def signer_at(self, index: int) -> Signer:
        address = self.valset.validators[index].address
        return next(s for s in self.signers if s.address == address)

    def vote(
        self,
        index: int,
        kind: VoteType,
        height: int,
        round_: int,
        block_id: BlockID | None,
        chain_id: str = CHAIN,
        timestamp_ms: int = 1000,
    ) -> Vote:
        signer = self.signer_at(index)
        vote = Vote(kind, height, round_, block_id, timestamp_ms, signer.address, index)
        return replace(vote, signature=signer.sign(vote.sign_bytes(chain_id)))


def block_id(tag: bytes) -> BlockID:
    return BlockID(sha256(tag))
