"""The Tendermint consensus core: a pure ``step(state, event) -> (state, actions)``.

Algorithm 1 of "The latest gossip on BFT consensus" (Buchman, Kwon, Milosevic 2018). The line
numbers in comments refer to that algorithm. "+2/3" is strictly more than two thirds of the
height's total voting power, "f+1" strictly more than one third. No clock, I/O or randomness:
time enters only as :class:`TimeoutFired` events and timestamps the shell puts on signatures.

How a node shell drives the core
--------------------------------
1. Start: ``state = new_height_state(config, height, validators, ...)`` for the height after the
   last stored block (``last_*`` from the store; at genesis height 1 with ``last_block_id=None``).
   If the WAL holds events after the last end-of-height marker, fold them in:
   ``state = replay(state, events)``. Then ``state, actions = resume(state)`` and perform them.
2. Loop: for every input (a message from a peer, a fired timer, a signature from the private
   validator, an answer from the application) build the event, append it to the WAL (with
   ``sync=True`` for :class:`VoteSigned`/:class:`ProposalSigned`, so our own message is durable
   before it can leave), then ``state, actions = step(state, event)`` and perform the actions
   in order:

   - ``Broadcast(msg)``: send to all peers. ``Relay(msg)``: optional forwarding to peers.
   - ``SignVote(vote)`` / ``SignProposal(p, block)``: set ``timestamp_ms`` from the clock, sign
     via :class:`consensus.privval.PrivValidator` and feed ``VoteSigned``/``ProposalSigned``
     (on :class:`consensus.privval.DoubleSignError` feed nothing).
   - ``RequestProposal``: reap the mempool and evidence pool, build the block with
     :func:`consensus.blocks.make_block`, feed ``ProposalBlock``.
   - ``ValidateBlock(block)``: application checks; feed ``BlockValidated(block_id, ok)``.
   - ``ScheduleTimeout(h, r, step, ms)``: feed ``TimeoutFired(h, r, step)`` after ``ms``
     (stale ones are ignored by the core, so timers never need cancelling).
   - ``CommitBlock(block, commit)``: execute, store block+commit in one synced batch, write the
     WAL end-of-height marker, feed ``BlockExecuted(height, app_hash, next_validators)``.
   - ``EvidenceFound(ev)``: put into the evidence pool for a later block.
   - ``Halt(evidence)``: two blocks hold +2/3 precommits at this height (more than a third
     of the power is byzantine): persist the evidence, log it, stop the node. The core
     decides neither block and ignores every later event.
3. Periodically (e.g. every ``timeout_propose``) send :func:`gossip_messages` to peers: the
   paper assumes every message of a correct process is eventually delivered; after losses or a
   partition this retransmission is what restores liveness. A peer reporting a lower height is
   sent our stored block and commit of its height, which it feeds as ``CommitReceived``.
"""

from __future__ import annotations

__all__ = [
    "RoundParams",
    "ConsensusState",
    "CoreConfig",
    "gossip_messages",
    "new_height_state",
    "proposer_of",
    "replay",
    "resume",
    "step",
]

from dataclasses import replace

from consensus.blocks import InvalidBlockError, check_block, check_block_integrity
from consensus.commit import CommitError, commit_from_votes, verify_commit
from consensus.events import (
    Action,
    BlockExecuted,
    BlockValidated,
    Broadcast,
    CommitBlock,
    CommitReceived,
    Event,
    EvidenceFound,
    Halt,
    Message,
    ProposalBlock,
    ProposalMessage,
    ProposalReceived,
    ProposalSigned,
    Relay,
    RequestProposal,
    ScheduleTimeout,
    SignProposal,
    SignVote,
    Step,
    TimeoutFired,
    ValidateBlock,
    VoteReceived,
    VoteSigned,
)
from consensus.round_state import (
    MAX_FUTURE_EVENTS,
    MAX_PROPOSALS_PER_ROUND,
    MAX_ROUNDS_AHEAD,
    RoundParams,
    ConsensusState,
    CoreConfig,
    new_height_state,
)
from consensus.types import (
    Block,
    BlockID,
    Commit,
    ConflictingCommits,
    DuplicateVoteEvidence,
    Proposal,
    Vote,
    VoteType,
)
from consensus.voteset import AddResult, VoteSet, add_vote, has_vote

# --- public entry points ------------------------------------------------------------------


def step(state: ConsensusState, event: Event) -> tuple[ConsensusState, list[Action]]:
    """Consume one event; return the new state and what the shell must do."""
    s = state.copy()
    out: list[Action] = []
    _handle(s, event, out)
    return s, out


def replay(state: ConsensusState, events: list[Event]) -> ConsensusState:
    """Fold WAL events into ``state`` (actions discarded: :func:`resume` recomputes them)."""
    for event in events:
        state, _ = step(state, event)
    return state


def resume(state: ConsensusState) -> tuple[ConsensusState, list[Action]]:
    """What the shell must (re)do to continue from ``state`` after start or replay.

    Returns a new state too: re-requesting a proposal records the request, so that the
    answer is accepted.
    """
    s = state.copy()
    out: list[Action] = []
    p = s.config.params
    pending = list(s.own_requests.values())
    if s.halted is not None:
        out.append(Halt(s.halted))
        return s, out
    if s.step == Step.NEW_HEIGHT:
        out.append(ScheduleTimeout(s.height, 0, Step.NEW_HEIGHT, p.timeout_commit))
        return s, out
    if s.step == Step.COMMIT and s.decision is not None:
        out.append(CommitBlock(*s.decision))
        return s, out
    if s.step == Step.PROPOSE:
        out.append(ScheduleTimeout(s.height, s.round, Step.PROPOSE, p.propose_timeout(s.round)))
        no_proposal = s.first_proposal.get(s.round) is None and (s.round, 0) not in s.own_requests
        if _am_proposer(s, s.round) and no_proposal:
            out.append(_proposal_request(s))
    if s.prevote_timeout_round == s.round and s.step == Step.PREVOTE:
        out.append(ScheduleTimeout(s.height, s.round, Step.PREVOTE, p.prevote_timeout(s.round)))
    if s.precommit_timeout_round == s.round:
        out.append(ScheduleTimeout(s.height, s.round, Step.PRECOMMIT, p.precommit_timeout(s.round)))
    for request in pending:
        if isinstance(request, Vote):
            out.append(SignVote(request))
        else:
            out.append(SignProposal(*request))
    for block_id, verdict in s.verdicts.items():
        if verdict is None:
            out.append(ValidateBlock(s.blocks[block_id]))
    out.extend(Broadcast(m) for m in gossip_messages(s))
    return s, out


def gossip_messages(state: ConsensusState) -> list[Message]:
    """Our own signed messages of the current height, plus the first proposal of the current
    round and the proposal of the valid value (a polka's block need not be its round's first
    proposal: a byzantine proposer may have signed two).

    Sent periodically so that messages lost before a partition healed are delivered.
    """
    s = state
    messages: list[Message] = []
    index = s.my_index
    wanted: list[tuple[int, BlockID]] = []
    if s.valid_block is not None:
        wanted.append((s.valid_round, s.valid_block))
    first = s.first_proposal.get(s.round)
    if first is not None and (s.round, first) not in wanted:
        wanted.append((s.round, first))
    for round_, bid in sorted(wanted, key=lambda item: item[0]):
        messages.append(ProposalMessage(s.proposals[round_][bid], s.blocks[bid]))
    if index >= 0:
        for key in sorted(s.votes):
            vote = s.votes[key].votes.get(index)
            if vote is not None:
                messages.append(vote)
    return messages


def proposer_of(state: ConsensusState, round_: int) -> bytes:
    return state.validators.proposer_for_round(round_).address


# --- event handling -----------------------------------------------------------------------


def _handle(s: ConsensusState, event: Event, out: list[Action]) -> None:
    if s.halted is not None:
        return
    if isinstance(event, VoteReceived):
        _on_vote(s, event, event.vote, out, own=False)
    elif isinstance(event, ProposalReceived):
        _on_proposal(s, event, event.message, out, own=False)
    elif isinstance(event, VoteSigned):
        _on_vote(s, event, event.vote, out, own=True)
    elif isinstance(event, ProposalSigned):
        _on_proposal(s, event, event.message, out, own=True)
    elif isinstance(event, TimeoutFired):
        _on_timeout(s, event, out)
    elif isinstance(event, ProposalBlock):
        _on_proposal_block(s, event, out)
    elif isinstance(event, BlockValidated):
        if s.verdicts.get(event.block_id, False) is None:
            s.verdicts[event.block_id] = event.valid
    elif isinstance(event, BlockExecuted):
        _on_executed(s, event, out)
        return
    elif isinstance(event, CommitReceived):
        _on_commit_received(s, event, out)
    _apply_rules(s, out)


def _on_vote(s: ConsensusState, event: Event, vote: Vote, out: list[Action], own: bool) -> None:
    if vote.height == s.height + 1 and not own:
        if len(s.future) < MAX_FUTURE_EVENTS:
            s.future = s.future + (event,)
        return
    if vote.height != s.height or vote.round > s.round + MAX_ROUNDS_AHEAD:
        return
    index = vote.validator_index
    if (
        index >= len(s.validators)
        or s.validators.validators[index].address != vote.validator_address
    ):
        return
    key = (vote.round, vote.type)
    current = s.votes.get(key)
    if has_vote(current, vote):
        return
    validator = s.validators.validators[index]
    if own:
        request = s.own_requests.get((vote.round, int(vote.type)))
        if not isinstance(request, Vote) or replace(request, timestamp_ms=0) != replace(
            vote, timestamp_ms=0, signature=b""
        ):
            return
        del s.own_requests[(vote.round, int(vote.type))]
    elif not s.config.verifier(
        validator.public_key, vote.sign_bytes(s.config.chain_id), vote.signature
    ):
        return
    if current is None:
        current = VoteSet(s.height, vote.round, vote.type)
    new_set, result, evidence = add_vote(current, vote, validator.voting_power)
    s.votes[key] = new_set
    if evidence is not None:
        _record_evidence(s, evidence, out)
    if result != AddResult.DUPLICATE:
        out.append(Broadcast(vote) if own else Relay(vote))


def _record_evidence(s: ConsensusState, evidence: DuplicateVoteEvidence, out: list[Action]) -> None:
    digest = evidence.hash()
    if digest not in s.evidence_seen:
        s.evidence_seen = s.evidence_seen | {digest}
        out.append(EvidenceFound(evidence))


def _on_proposal(
    s: ConsensusState, event: Event, message: ProposalMessage, out: list[Action], own: bool
) -> None:
    proposal, block = message.proposal, message.block
    if proposal.height == s.height + 1 and not own:
        if len(s.future) < MAX_FUTURE_EVENTS:
            s.future = s.future + (event,)
        return
    if proposal.height != s.height or proposal.round > s.round + MAX_ROUNDS_AHEAD:
        return
    if not (-1 <= proposal.pol_round < proposal.round):
        return
    bid = proposal.block_id
    per_round = s.proposals.get(proposal.round, {})
    if bid in per_round or len(per_round) >= MAX_PROPOSALS_PER_ROUND:
        return
    if block.block_id() != bid:
        return
    if own:
        request = s.own_requests.get((proposal.round, 0))
        if request is None or replace(request[0], timestamp_ms=0) != replace(
            proposal, timestamp_ms=0, signature=b""
        ):
            return
        del s.own_requests[(proposal.round, 0)]
    else:
        proposer = s.validators.proposer_for_round(proposal.round)
        sign_bytes = proposal.sign_bytes(s.config.chain_id)
        if not s.config.verifier(proposer.public_key, sign_bytes, proposal.signature):
            return
    s.proposals[proposal.round] = {**per_round, bid: proposal}
    s.first_proposal.setdefault(proposal.round, bid)
    if bid not in s.blocks:
        s.blocks[bid] = block
        _check(s, block, out)
    out.append(Broadcast(message) if own else Relay(message))


def _check(s: ConsensusState, block: Block, out: list[Action]) -> None:
    """Consensus-level checks now; the application's verdict comes as BlockValidated."""
    bid = block.block_id()
    try:
        check_block(
            block,
            chain_id=s.config.chain_id,
            height=s.height,
            validators=s.validators,
            last_validators=s.last_validators,
            last_block_id=s.last_block_id,
            last_block_time_ms=s.last_block_time_ms,
            app_hash=s.app_hash,
            limits=s.config.params.limits,
            verifier=s.config.verifier,
        )
    except InvalidBlockError:
        s.verdicts[bid] = False
        return
    s.verdicts[bid] = None
    out.append(ValidateBlock(block))


def _on_proposal_block(s: ConsensusState, event: ProposalBlock, out: list[Action]) -> None:
    if (event.height, event.round) != (s.height, s.round) or s.step != Step.PROPOSE:
        return
    if not _am_proposer(s, s.round) or s.proposal_requested != s.round:
        return
    if s.first_proposal.get(s.round) is not None or (s.round, 0) in s.own_requests:
        return
    proposal = Proposal(s.height, s.round, -1, event.block.block_id(), 0)
    s.own_requests[(s.round, 0)] = (proposal, event.block)
    out.append(SignProposal(proposal, event.block))


def _on_timeout(s: ConsensusState, event: TimeoutFired, out: list[Action]) -> None:
    if event.height != s.height:
        return
    if event.step == Step.NEW_HEIGHT:
        if s.step == Step.NEW_HEIGHT:
            _start_round(s, 0, out)
        return
    if event.round != s.round:
        return
    if event.step == Step.PROPOSE and s.step == Step.PROPOSE:  # line 57
        _vote(s, VoteType.PREVOTE, None, out)
        s.step = Step.PREVOTE
    elif event.step == Step.PREVOTE and s.step == Step.PREVOTE:  # line 61
        _vote(s, VoteType.PRECOMMIT, None, out)
        s.step = Step.PRECOMMIT
    elif event.step == Step.PRECOMMIT and s.step in (Step.PROPOSE, Step.PREVOTE, Step.PRECOMMIT):
        _start_round(s, s.round + 1, out)  # line 65


def _on_executed(s: ConsensusState, event: BlockExecuted, out: list[Action]) -> None:
    if event.height != s.height or s.decision is None:
        return
    block, commit = s.decision
    future = s.future
    fresh = new_height_state(
        s.config,
        s.height + 1,
        event.next_validators,
        last_validators=s.validators,
        last_block_id=block.block_id(),
        last_block_time_ms=block.header.time_ms,
        last_commit=commit,
        app_hash=event.app_hash,
    )
    for name in fresh.__dataclass_fields__:
        setattr(s, name, getattr(fresh, name))
    out.append(ScheduleTimeout(s.height, 0, Step.NEW_HEIGHT, s.config.params.timeout_commit))
    for buffered in future:
        _handle(s, buffered, out)


def _on_commit_received(s: ConsensusState, event: CommitReceived, out: list[Action]) -> None:
    block, commit = event.block, event.commit
    if s.decision is not None or block.height != s.height:
        return
    bid = block.block_id()
    try:
        check_block_integrity(block)
        verify_commit(s.config.chain_id, s.validators, bid, s.height, commit, s.config.verifier)
    except (CommitError, InvalidBlockError):
        return
    for ours in _precommit_quorums(s):
        if ours.block_id != bid:
            _halt(s, ConflictingCommits.of(ours, commit), out)
            return
    _decide(s, block, commit, out)


# --- the upon rules -----------------------------------------------------------------------


def _apply_rules(s: ConsensusState, out: list[Action]) -> None:
    """Fire the algorithm's upon-rules until none applies (each changes state when it fires)."""
    while s.decision is None and s.halted is None and s.step != Step.NEW_HEIGHT:
        if not (
            _rule_decide(s, out)
            or _rule_skip_round(s, out)
            or _rule_proposal(s, out)
            or _rule_prevote_timeout(s, out)
            or _rule_polka(s, out)
            or _rule_polka_nil(s, out)
            or _rule_precommit_timeout(s, out)
        ):
            return


def _valid(s: ConsensusState, bid: BlockID | None) -> bool | None:
    if bid is None:
        return None
    return s.verdicts.get(bid, None)


def _rule_proposal(s: ConsensusState, out: list[Action]) -> bool:
    """Lines 22 and 28: prevote on a proposal of this round.

    Every proposal of the round is a candidate, in the order they arrived: a byzantine
    proposer may sign several, and the one the rule can fire on (validated, or with its
    valid round's polka seen) need not be the first.
    """
    if s.step != Step.PROPOSE:
        return False
    ignore_lock = s.config.ignore_lock_for_tests
    for bid, proposal in s.proposals.get(s.round, {}).items():
        valid = _valid(s, bid)
        if valid is None:
            continue
        vr = proposal.pol_round
        if vr == -1:  # line 22
            ok = valid and (s.locked_round == -1 or s.locked_block == bid or ignore_lock)
        else:  # line 28
            prevotes = s.votes.get((vr, VoteType.PREVOTE))
            if prevotes is None or not s.validators.two_thirds(prevotes.power_for(bid)):
                continue
            ok = valid and (s.locked_round <= vr or s.locked_block == bid or ignore_lock)
        _vote(s, VoteType.PREVOTE, bid if ok else None, out)
        s.step = Step.PREVOTE
        return True
    return False


def _rule_prevote_timeout(s: ConsensusState, out: list[Action]) -> bool:
    """Line 34: +2/3 prevotes of any kind, first time: schedule timeoutPrevote."""
    if s.step != Step.PREVOTE or s.prevote_timeout_round == s.round:
        return False
    prevotes = s.votes.get((s.round, VoteType.PREVOTE))
    if prevotes is None or not s.validators.two_thirds(prevotes.power):
        return False
    s.prevote_timeout_round = s.round
    p = s.config.params
    out.append(ScheduleTimeout(s.height, s.round, Step.PREVOTE, p.prevote_timeout(s.round)))
    return True


def _rule_polka(s: ConsensusState, out: list[Action]) -> bool:
    """Line 36: a valid proposal with +2/3 prevotes in this round: lock (if prevoting) and
    remember it as the valid value."""
    if s.step not in (Step.PREVOTE, Step.PRECOMMIT) or s.polka_round == s.round:
        return False
    prevotes = s.votes.get((s.round, VoteType.PREVOTE))
    if prevotes is None:
        return False
    for bid in s.proposals.get(s.round, {}):
        if _valid(s, bid) and s.validators.two_thirds(prevotes.power_for(bid)):
            if s.step == Step.PREVOTE:
                s.locked_block, s.locked_round = bid, s.round
                _vote(s, VoteType.PRECOMMIT, bid, out)
                s.step = Step.PRECOMMIT
            s.valid_block, s.valid_round = bid, s.round
            s.polka_round = s.round
            return True
    return False


def _rule_polka_nil(s: ConsensusState, out: list[Action]) -> bool:
    """Line 44: +2/3 prevotes for nil: precommit nil."""
    if s.step != Step.PREVOTE:
        return False
    prevotes = s.votes.get((s.round, VoteType.PREVOTE))
    if prevotes is None or not s.validators.two_thirds(prevotes.power_for(None)):
        return False
    _vote(s, VoteType.PRECOMMIT, None, out)
    s.step = Step.PRECOMMIT
    return True


def _rule_precommit_timeout(s: ConsensusState, out: list[Action]) -> bool:
    """Line 47: +2/3 precommits of any kind, first time: schedule timeoutPrecommit."""
    if s.precommit_timeout_round == s.round:
        return False
    precommits = s.votes.get((s.round, VoteType.PRECOMMIT))
    if precommits is None or not s.validators.two_thirds(precommits.power):
        return False
    s.precommit_timeout_round = s.round
    p = s.config.params
    out.append(ScheduleTimeout(s.height, s.round, Step.PRECOMMIT, p.precommit_timeout(s.round)))
    return True


def _rule_decide(s: ConsensusState, out: list[Action]) -> bool:
    """Line 49: a valid block with +2/3 precommits in any round is decided.

    Unless another block has +2/3 precommits at this height too (in the same round or
    another): that needs more than a third of the power to sign both, so the theorem behind
    line 49 no longer holds and the core halts with both quorums instead of picking one.
    """
    quorums = _precommit_quorums(s)
    others = [q for q in quorums if q.block_id != quorums[0].block_id] if quorums else []
    if others:
        _halt(s, ConflictingCommits.of(quorums[0], others[0]), out)
        return True
    for commit in quorums:
        # The paper asks for the round's proposal; any block we hold with that id will do:
        # +2/3 precommits mean correct validators saw a valid polka for it.
        if _valid(s, commit.block_id):
            _decide(s, s.blocks[commit.block_id], commit, out)
            return True
    return False


def _precommit_quorums(s: ConsensusState) -> list[Commit]:
    """A commit for every (round, block) with +2/3 precommits, by round then block id.

    An equivocator's conflicting precommits count for each block they name (see
    :func:`consensus.voteset.add_vote`), and nil precommits of the round ride along as NIL.
    """
    found: list[Commit] = []
    for (round_, kind), precommits in sorted(s.votes.items()):
        if kind != VoteType.PRECOMMIT:
            continue
        for bid, power in sorted(
            (item for item in precommits.power_by_block.items() if item[0] is not None),
            key=lambda item: item[0].hash,
        ):
            if not s.validators.two_thirds(power):
                continue
            signers = {**precommits.votes, **precommits.votes_for(bid)}
            found.append(commit_from_votes(s.validators, s.height, round_, bid, signers))
    return found


def _halt(s: ConsensusState, evidence: ConflictingCommits, out: list[Action]) -> None:
    s.halted = evidence
    s.own_requests = {}
    out.append(Halt(evidence))


def _decide(s: ConsensusState, block: Block, commit: Commit, out: list[Action]) -> None:
    s.decision = (block, commit)
    s.step = Step.COMMIT
    s.own_requests = {}
    out.append(CommitBlock(block, commit))


def _rule_skip_round(s: ConsensusState, out: list[Action]) -> bool:
    """Line 55: f+1 of the power sent messages of a higher round: go to that round."""
    voters: dict[int, set[int]] = {}
    for (round_, _), vote_set in s.votes.items():
        if round_ > s.round:
            voters.setdefault(round_, set()).update(vote_set.votes)
    for round_ in sorted(voters, reverse=True):
        power = sum(s.validators.validators[i].voting_power for i in voters[round_])
        if s.validators.one_third(power):
            _start_round(s, round_, out)
            return True
    return False


# --- actions of the algorithm -------------------------------------------------------------


def _start_round(s: ConsensusState, round_: int, out: list[Action]) -> None:
    """Line 11: StartRound."""
    s.round = round_
    s.step = Step.PROPOSE
    p = s.config.params
    if _am_proposer(s, round_):
        out.append(_proposal_request(s))
    out.append(ScheduleTimeout(s.height, round_, Step.PROPOSE, p.propose_timeout(round_)))


def _proposal_request(s: ConsensusState) -> Action:
    """Lines 14-19: re-propose the valid value, or ask the shell for a new block."""
    if s.valid_block is not None:
        proposal = Proposal(s.height, s.round, s.valid_round, s.valid_block, 0)
        block = s.blocks[s.valid_block]
        s.own_requests[(s.round, 0)] = (proposal, block)
        return SignProposal(proposal, block)
    s.proposal_requested = s.round
    return RequestProposal(
        height=s.height,
        round=s.round,
        last_block_id=s.last_block_id,
        last_commit=s.last_commit,
        app_hash=s.app_hash,
        validators=s.validators,
        proposer_address=s.config.my_address or b"",
    )


def _am_proposer(s: ConsensusState, round_: int) -> bool:
    return s.my_index >= 0 and proposer_of(s, round_) == s.config.my_address


def _vote(s: ConsensusState, kind: VoteType, bid: BlockID | None, out: list[Action]) -> None:
    index = s.my_index
    if index < 0:
        return
    vote = Vote(kind, s.height, s.round, bid, 0, s.validators.validators[index].address, index)
    s.own_requests[(s.round, int(kind))] = vote
    out.append(SignVote(vote))
