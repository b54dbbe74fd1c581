"""Verification of commit certificates and duplicate-vote evidence, usable alone.

A light client or block sync holding a trusted validator set calls :func:`verify_commit` (or
:func:`verify_signed_header` when it has the header too) and needs nothing else from consensus.
Failures raise a subclass of :class:`CommitError` naming what is wrong.

``verifier`` defaults to :func:`primitives.crypto.verify` (the one verifier); a caller may pass a
caching wrapper of it (the simulator does), never a different algorithm.
"""

from __future__ import annotations

from collections.abc import Callable

from primitives.crypto import verify
from consensus.types import (
    BlockID,
    Commit,
    ConflictingCommits,
    CommitFlag,
    CommitSig,
    DuplicateVoteEvidence,
    Header,
    Vote,
    VoteType,
)
from consensus.validators import ValidatorSet

Verifier = Callable[[bytes, bytes, bytes], bool]


class CommitError(ValueError):
    """A commit certificate that does not prove what it is asked to prove."""


class WrongChainIdError(CommitError):
    """The header belongs to another chain."""


class WrongHeightError(CommitError):
    """The commit is for another height."""


class WrongBlockError(CommitError):
    """The commit is for another block."""


class WrongSignerError(CommitError):
    """A signature slot names a validator that is not the set's validator at that index,
    or the commit has a different number of slots than the set has validators."""


class DuplicateSignerError(CommitError):
    """The same validator appears twice in one commit."""


class NotEnoughPowerError(CommitError):
    """The valid signatures for the block hold two thirds of the power or less."""


class InvalidSignatureError(CommitError):
    """A signature does not verify (forged, corrupted, or made for another chain id)."""


def verify_commit(
    chain_id: str,
    validators: ValidatorSet,
    block_id: BlockID,
    height: int,
    commit: Commit,
    verifier: Verifier = verify,
) -> int:
    """Check that ``commit`` proves ``block_id`` final at ``height``; return the power for it.

    Every present signature (for the block or for nil) must verify; the power signing for the
    block must be strictly more than two thirds of the set's total power.
    """
    if commit.height != height:
        raise WrongHeightError(f"commit is for height {commit.height}, expected {height}")
    if commit.block_id != block_id:
        raise WrongBlockError(f"commit is for block {commit.block_id!r}, expected {block_id!r}")
    if len(commit.signatures) != len(validators):
        raise WrongSignerError(
            f"commit has {len(commit.signatures)} signature slots for {len(validators)} validators"
        )
    seen: set[bytes] = set()
    for sig in commit.signatures:
        if sig.flag == CommitFlag.ABSENT:
            continue
        if sig.validator_address in seen:
            raise DuplicateSignerError(f"validator {sig.validator_address.hex()} signs twice")
        seen.add(sig.validator_address)
    power = 0
    for index, (sig, validator) in enumerate(zip(commit.signatures, validators.validators)):
        if sig.flag == CommitFlag.ABSENT:
            continue
        if sig.validator_address != validator.address:
            raise WrongSignerError(
                f"slot {index} is signed by {sig.validator_address.hex()}, "
                f"expected {validator.address.hex()}"
            )
        vote = commit.vote_of(index)
        if not verifier(validator.public_key, vote.sign_bytes(chain_id), sig.signature):
            raise InvalidSignatureError(
                f"signature of validator {index} does not verify for chain {chain_id!r}"
            )
        if sig.flag == CommitFlag.COMMIT:
            power += validator.voting_power
    if not validators.two_thirds(power):
        raise NotEnoughPowerError(
            f"{power} of {validators.total_power} voting power signed; more than 2/3 is needed"
        )
    return power


def verify_signed_header(
    chain_id: str,
    validators: ValidatorSet,
    header: Header,
    commit: Commit,
    verifier: Verifier = verify,
) -> int:
    """Light-client check of a header and its commit against a trusted validator set."""
    if header.chain_id != chain_id:
        raise WrongChainIdError(f"header is for chain {header.chain_id!r}, expected {chain_id!r}")
    if header.validators_hash != validators.hash():
        raise WrongSignerError("header.validators_hash does not match the trusted validator set")
    return verify_commit(chain_id, validators, header.block_id(), header.height, commit, verifier)


def commit_from_votes(
    validators: ValidatorSet,
    height: int,
    round_: int,
    block_id: BlockID,
    precommits: dict[int, Vote],
) -> Commit:
    """Build the commit certificate from a round's precommits (validator index -> vote).

    Precommits for other blocks cannot be verified as part of this commit, so they are left out
    (ABSENT), as are missing ones.
    """
    sigs: list[CommitSig] = []
    for index in range(len(validators)):
        vote = precommits.get(index)
        if vote is None or (vote.block_id is not None and vote.block_id != block_id):
            sigs.append(CommitSig(CommitFlag.ABSENT))
            continue
        flag = CommitFlag.COMMIT if vote.block_id == block_id else CommitFlag.NIL
        sigs.append(CommitSig(flag, vote.validator_address, vote.timestamp_ms, vote.signature))
    return Commit(height, round_, block_id, tuple(sigs))


# --- evidence -----------------------------------------------------------------------------


class EvidenceError(ValueError):
    """Evidence that does not prove a double sign."""


def verify_duplicate_vote(
    chain_id: str,
    validators: ValidatorSet,
    evidence: DuplicateVoteEvidence,
    verifier: Verifier = verify,
) -> None:
    """Check that ``evidence`` proves a double sign by a member of ``validators``.

    ``validators`` is the set of the evidence's height (the caller looks it up); the caller also
    checks the evidence is not expired and not already committed.
    """
    a, b = evidence.vote_a, evidence.vote_b
    if (a.height, a.round, a.type) != (b.height, b.round, b.type):
        raise EvidenceError("votes are for different height, round or type")
    if a.type not in (VoteType.PREVOTE, VoteType.PRECOMMIT):
        raise EvidenceError("unknown vote type")
    if a.validator_address != b.validator_address or a.validator_index != b.validator_index:
        raise EvidenceError("votes are from different validators")
    if a.block_id == b.block_id:
        raise EvidenceError("votes are for the same block")
    if DuplicateVoteEvidence.of(a, b) != evidence:
        raise EvidenceError("votes are not in canonical order")
    index = validators.index_of(a.validator_address)
    if index < 0 or index != a.validator_index:
        raise EvidenceError("the validator is not in the set at that index")
    public_key = validators.validators[index].public_key
    for vote in (a, b):
        if not verifier(public_key, vote.sign_bytes(chain_id), vote.signature):
            raise EvidenceError("a vote's signature does not verify")


def verify_conflicting_commits(
    chain_id: str,
    validators: ValidatorSet,
    evidence: ConflictingCommits,
    verifier: Verifier = verify,
) -> None:
    """Check that ``evidence`` proves two blocks final at one height under ``validators``.

    Raises :class:`EvidenceError` naming what fails (a :class:`CommitError` of either commit
    is wrapped).
    """
    a, b = evidence.commit_a, evidence.commit_b
    if a.height != b.height:
        raise EvidenceError("commits are for different heights")
    if a.block_id == b.block_id:
        raise EvidenceError("commits are for the same block")
    if ConflictingCommits.of(a, b) != evidence:
        raise EvidenceError("commits are not in canonical order")
    for commit in (a, b):
        try:
            verify_commit(chain_id, validators, commit.block_id, a.height, commit, verifier)
        except CommitError as exc:
            raise EvidenceError(f"commit for round {commit.round} does not verify: {exc}") from exc
