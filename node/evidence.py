"""The evidence pool: proofs of double signing waiting to be committed in a block.

Evidence comes from our own core (two conflicting votes seen) or from peers; it is verified
against the validator set of its height, kept until a block includes it, and never accepted
twice. Committed evidence makes the application jail the validator (``begin_block``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from consensus.commit import EvidenceError, verify_duplicate_vote
from consensus.types import DuplicateVoteEvidence
from consensus.validators import ValidatorSet

MAX_EVIDENCE_PER_BLOCK = 16
EVIDENCE_MAX_AGE = 1000
"""Heights after which evidence is too old to punish."""


class EvidencePool:
    def __init__(self, chain_id: str, validators_at: Callable[[int], ValidatorSet | None],
                 verifier: Callable[[bytes, bytes, bytes], bool]) -> None:
        self.chain_id = chain_id
        self.validators_at = validators_at
        self.verifier = verifier
        self.pending: dict[bytes, DuplicateVoteEvidence] = {}
        self.committed: set[bytes] = set()

    def valid(self, evidence: DuplicateVoteEvidence, at_height: int) -> bool:
        """True iff the evidence proves a double sign punishable at ``at_height``."""
        if not (at_height - EVIDENCE_MAX_AGE <= evidence.height <= at_height):
            return False
        validators = self.validators_at(evidence.height)
        if validators is None:
            return False
        try:
            verify_duplicate_vote(self.chain_id, validators, evidence, self.verifier)
        except EvidenceError:
            return False
        return True

    def add(self, evidence: DuplicateVoteEvidence, at_height: int) -> bool:
        """Keep valid, new evidence; True if it was added (then gossip it)."""
        digest = evidence.hash()
        if digest in self.pending or digest in self.committed or not self.valid(evidence, at_height):
            return False
        self.pending[digest] = evidence
        return True

    def for_block(self) -> list[DuplicateVoteEvidence]:
        return sorted(self.pending.values(), key=lambda e: e.hash())[:MAX_EVIDENCE_PER_BLOCK]

    def block_ok(self, evidence: Iterable[DuplicateVoteEvidence], height: int) -> bool:
        """A proposal's evidence: each valid, none repeated, none already committed."""
        seen: set[bytes] = set()
        for item in evidence:
            digest = item.hash()
            if digest in seen or digest in self.committed or not self.valid(item, height):
                return False
            seen.add(digest)
        return True

    def mark_committed(self, evidence: Iterable[DuplicateVoteEvidence]) -> None:
        for item in evidence:
            digest = item.hash()
            self.committed.add(digest)
            self.pending.pop(digest, None)
