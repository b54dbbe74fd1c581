"""The core's inputs (events) and outputs (actions), and the network messages.

Events are what :func:`consensus.core.step` consumes; each has a plain form for the WAL
(:func:`event_to_obj` / :func:`event_from_obj`). Actions are what the node shell must do; they
are never persisted (replay recomputes them, see :func:`consensus.core.resume`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from consensus.types import (
    Block,
    BlockID,
    Commit,
    ConflictingCommits,
    DuplicateVoteEvidence,
    MessageError,
    Proposal,
    Vote,
)
from consensus.validators import ValidatorSet


class Step(IntEnum):
    NEW_HEIGHT = 0
    """Waiting ``timeout_commit`` after the previous block, collecting early messages."""
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3
    COMMIT = 4
    """Decided; waiting for the shell to execute the block (:class:`BlockExecuted`)."""


# --- network messages ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProposalMessage:
    """A signed proposal with its block (this design gossips whole blocks, no part sets)."""

    proposal: Proposal
    block: Block

    def to_obj(self) -> dict:
        return {"proposal": self.proposal.to_obj(), "block": self.block.to_obj()}

    @classmethod
    def from_obj(cls, obj: Any) -> ProposalMessage:
        if not isinstance(obj, dict):
            raise MessageError("proposal message must be a map")
        return cls(Proposal.from_obj(obj.get("proposal")), Block.from_obj(obj.get("block")))


@dataclass(frozen=True)
class CatchUp:
    """A committed block with its commit, for a peer that is behind."""

    block: Block
    commit: Commit


@dataclass(frozen=True)
class EvidenceMessage:
    """Double-sign evidence passed on to peers."""

    evidence: DuplicateVoteEvidence


Message = ProposalMessage | Vote


# --- events (inputs) ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProposalReceived:
    """A proposal from the network (signature not yet checked: the core checks it)."""

    message: ProposalMessage


@dataclass(frozen=True)
class VoteReceived:
    """A vote from the network (signature not yet checked: the core checks it)."""

    vote: Vote


@dataclass(frozen=True)
class ProposalBlock:
    """The shell's answer to :class:`RequestProposal`: an unsigned block for (height, round)."""

    height: int
    round: int
    block: Block


@dataclass(frozen=True)
class ProposalSigned:
    """Our own proposal, signed by the private validator (answer to :class:`SignProposal`)."""

    message: ProposalMessage


@dataclass(frozen=True)
class VoteSigned:
    """Our own vote, signed by the private validator (answer to :class:`SignVote`)."""

    vote: Vote


@dataclass(frozen=True)
class BlockValidated:
    """The application's verdict on a proposed block (answer to :class:`ValidateBlock`)."""

    block_id: BlockID
    valid: bool


@dataclass(frozen=True)
class TimeoutFired:
    """A timeout scheduled by :class:`ScheduleTimeout` elapsed."""

    height: int
    round: int
    step: Step


@dataclass(frozen=True)
class BlockExecuted:
    """The shell executed and durably stored the committed block of ``height``.

    ``next_validators`` is the validator set of height + 1, proposer priorities already advanced
    (``ValidatorSet.advance()`` of the current set when there are no updates).
    """

    height: int
    app_hash: bytes
    next_validators: ValidatorSet


@dataclass(frozen=True)
class CommitReceived:
    """Catch-up: a peer's block and commit for the height we are deciding."""

    block: Block
    commit: Commit


Event = (
    ProposalReceived
    | VoteReceived
    | ProposalBlock
    | ProposalSigned
    | VoteSigned
    | BlockValidated
    | TimeoutFired
    | BlockExecuted
    | CommitReceived
)


def event_to_obj(event: Event) -> list:
    """Plain form of an event for the WAL: [kind, body]."""
    if isinstance(event, ProposalReceived):
        return ["proposal", event.message.to_obj()]
    if isinstance(event, VoteReceived):
        return ["vote", event.vote.to_obj()]
    if isinstance(event, ProposalBlock):
        return ["proposal_block", [event.height, event.round, event.block.to_obj()]]
    if isinstance(event, ProposalSigned):
        return ["own_proposal", event.message.to_obj()]
    if isinstance(event, VoteSigned):
        return ["own_vote", event.vote.to_obj()]
    if isinstance(event, BlockValidated):
        return ["validated", [event.block_id.hash, event.valid]]
    if isinstance(event, TimeoutFired):
        return ["timeout", [event.height, event.round, int(event.step)]]
    if isinstance(event, BlockExecuted):
        return ["executed", [event.height, event.app_hash, event.next_validators.to_obj()]]
    if isinstance(event, CommitReceived):
        return ["commit", [event.block.to_obj(), event.commit.to_obj()]]
    raise MessageError(f"not an event: {type(event).__name__}")


def event_from_obj(obj: Any) -> Event:
    if type(obj) is not list or len(obj) != 2 or type(obj[0]) is not str:
        raise MessageError("event must be [kind, body]")
    kind, body = obj
    try:
        if kind == "proposal":
            return ProposalReceived(ProposalMessage.from_obj(body))
        if kind == "vote":
            return VoteReceived(Vote.from_obj(body))
        if kind == "proposal_block":
            return ProposalBlock(int(body[0]), int(body[1]), Block.from_obj(body[2]))
        if kind == "own_proposal":
            return ProposalSigned(ProposalMessage.from_obj(body))
        if kind == "own_vote":
            return VoteSigned(Vote.from_obj(body))
        if kind == "validated":
            return BlockValidated(BlockID.from_obj(body[0]), bool(body[1]))
        if kind == "timeout":
            return TimeoutFired(int(body[0]), int(body[1]), Step(body[2]))
        if kind == "executed":
            return BlockExecuted(int(body[0]), bytes(body[1]), ValidatorSet.from_obj(body[2]))
        if kind == "commit":
            return CommitReceived(Block.from_obj(body[0]), Commit.from_obj(body[1]))
    except (TypeError, IndexError, KeyError, ValueError) as exc:
        raise MessageError(f"malformed {kind} event: {exc}") from exc
    raise MessageError(f"unknown event kind {kind!r}")


# --- actions (outputs) --------------------------------------------------------------------


@dataclass(frozen=True)
class Broadcast:
    """Send our own signed message to every peer (after the WAL holds it, see core docs)."""

    message: Message


@dataclass(frozen=True)
class Relay:
    """A message from another validator seen for the first time; gossip may forward it."""

    message: Message


@dataclass(frozen=True)
class RequestProposal:
    """We propose at (height, round): build a block with :func:`consensus.blocks.make_block`
    from these fields plus txs, evidence, time, next_validators and last_results_hash, and feed
    it back as :class:`ProposalBlock`."""

    height: int
    round: int
    last_block_id: BlockID | None
    last_commit: Commit | None
    app_hash: bytes
    validators: ValidatorSet
    proposer_address: bytes


@dataclass(frozen=True)
class SignProposal:
    """Set ``timestamp_ms``, sign through the private validator, feed back
    :class:`ProposalSigned`. A refusal is dropped silently (the core times out)."""

    proposal: Proposal
    block: Block


@dataclass(frozen=True)
class SignVote:
    """Set ``timestamp_ms``, sign through the private validator, feed back :class:`VoteSigned`."""

    vote: Vote


@dataclass(frozen=True)
class ValidateBlock:
    """Run the application's checks on a block that passed the consensus checks; feed back
    :class:`BlockValidated`."""

    block: Block


@dataclass(frozen=True)
class ScheduleTimeout:
    """Feed :class:`TimeoutFired` (height, round, step) after ``duration_ms``."""

    height: int
    round: int
    step: Step
    duration_ms: int


@dataclass(frozen=True)
class CommitBlock:
    """The block is final: execute it, store block + commit atomically, write the WAL's
    end-of-height marker, then feed :class:`BlockExecuted`. Must be idempotent (replay may
    repeat it for a height already stored)."""

    block: Block
    commit: Commit


@dataclass(frozen=True)
class EvidenceFound:
    """A validator double signed: add to the evidence pool (and gossip it)."""

    evidence: DuplicateVoteEvidence


@dataclass(frozen=True)
class Halt:
    """Two blocks each hold +2/3 precommits at this height: more than a third of the power
    signed both, and deciding either could fork the chain. The core decides neither and
    ignores every later event; the shell persists the evidence durably, logs it and stops the
    node (an operator must look). Replay of the same WAL halts again."""

    evidence: ConflictingCommits


Action = (
    Broadcast
    | Relay
    | RequestProposal
    | SignProposal
    | SignVote
    | ValidateBlock
    | ScheduleTimeout
    | CommitBlock
    | EvidenceFound
    | Halt
)
