"""Votes of one (height, round, type), tallied by block id, with equivocation detection.

A :class:`VoteSet` is copy-on-write: :func:`add_vote` returns a new set, so consensus states
that share a vote set never see each other's changes. The first vote of a validator is the one
counted; a second, different vote of the same validator yields
:class:`consensus.types.DuplicateVoteEvidence` and is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.types import BlockID, DuplicateVoteEvidence, Vote, VoteType

MAX_VOTES_PER_VALIDATOR = 4
"""Distinct block ids counted per validator in one vote set (1 honest + equivocations)."""


@dataclass(frozen=True)
class VoteSet:
    height: int
    round: int
    type: VoteType
    votes: dict[int, Vote] = field(default_factory=dict)
    """validator index -> the first vote seen from it."""
    conflicting: dict[int, tuple[Vote, ...]] = field(default_factory=dict)
    """validator index -> its later votes for other block ids (an equivocator's)."""
    power_by_block: dict[BlockID | None, int] = field(default_factory=dict)
    """block id (None: nil) -> power of the validators that voted for it."""
    power: int = 0
    """Power of every validator that voted, whatever for (each counted once)."""

    def power_for(self, block_id: BlockID | None) -> int:
        return self.power_by_block.get(block_id, 0)

    def votes_for(self, block_id: BlockID | None) -> dict[int, Vote]:
        """validator index -> its vote for ``block_id`` (conflicting votes included)."""
        found = {i: v for i, v in self.votes.items() if v.block_id == block_id}
        for i, others in self.conflicting.items():
            for v in others:
                if v.block_id == block_id:
                    found[i] = v
        return found


class AddResult:
    ADDED = "added"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


def add_vote(
    vote_set: VoteSet, vote: Vote, power: int
) -> tuple[VoteSet, str, DuplicateVoteEvidence | None]:
    """Add a vote already checked (signature, validator index) by the caller.

    Returns the new set, an :class:`AddResult` value, and evidence on a conflict.

    A conflicting vote is evidence, and it is also counted for its block id (up to
    MAX_VOTES_PER_VALIDATOR ids per validator): the paper counts messages, so an equivocator's
    prevote does belong to the polka it helped form, and a correct node that saw the other
    vote first must still be able to see that polka (or it could stay stuck behind a lock).
    """
    i = vote.validator_index
    existing = vote_set.votes.get(i)
    by_block = dict(vote_set.power_by_block)
    by_block[vote.block_id] = by_block.get(vote.block_id, 0) + power
    if existing is None:
        votes = dict(vote_set.votes)
        votes[i] = vote
        new = VoteSet(
            vote_set.height,
            vote_set.round,
            vote_set.type,
            votes,
            vote_set.conflicting,
            by_block,
            vote_set.power + power,
        )
        return new, AddResult.ADDED, None
    others = vote_set.conflicting.get(i, ())
    if existing.block_id == vote.block_id or any(o.block_id == vote.block_id for o in others):
        return vote_set, AddResult.DUPLICATE, None
    evidence = DuplicateVoteEvidence.of(existing, vote)
    if 1 + len(others) >= MAX_VOTES_PER_VALIDATOR:
        return vote_set, AddResult.CONFLICT, evidence
    conflicting = dict(vote_set.conflicting)
    conflicting[i] = others + (vote,)
    new = VoteSet(
        vote_set.height,
        vote_set.round,
        vote_set.type,
        vote_set.votes,
        conflicting,
        by_block,
        vote_set.power,
    )
    return new, AddResult.CONFLICT, evidence


def has_vote(vote_set: VoteSet | None, vote: Vote) -> bool:
    """True iff a vote of this validator for this block id is already counted."""
    if vote_set is None:
        return False
    existing = vote_set.votes.get(vote.validator_index)
    if existing is None:
        return False
    if existing.block_id == vote.block_id:
        return True
    return any(
        o.block_id == vote.block_id for o in vote_set.conflicting.get(vote.validator_index, ())
    )
