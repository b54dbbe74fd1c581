"""The pure core driven by hand: the happy path, timeouts, WAL replay, catch-up, gossip and
thresholds (each upon-rule of Algorithm 1 with its negative case is in algorithm1.py)."""

from __future__ import annotations

import copy
from dataclasses import replace

from consensus_helpers import CHAIN, Keys
from core_harness import APP_HASH, Harness
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.commit import commit_from_votes
from consensus.core import (
    gossip_messages,
    new_height_state,
    replay,
    resume,
    step,
)
from consensus.events import (
    BlockExecuted,
    Broadcast,
    CommitBlock,
    CommitReceived,
    EvidenceFound,
    ProposalMessage,
    ProposalReceived,
    RequestProposal,
    ScheduleTimeout,
    SignVote,
    Step,
    TimeoutFired,
    VoteReceived,
)
from consensus.types import Block, Proposal, Vote, VoteType

def test_happy_path_commits_and_moves_to_the_next_height(keys: Keys) -> None:
    h = Harness(keys)
    h.start()
    assert h.state.step == Step.PROPOSE and h.timeouts()[-1] == ScheduleTimeout(
        1, 0, Step.PROPOSE, 100
    )
    block = h.block(b"tx")
    h.propose(0, block)
    assert h.my_votes(VoteType.PREVOTE, 0) == [block.block_id()]
    h.votes(VoteType.PREVOTE, 0, block, h.others(2))
    assert h.state.locked_block == block.block_id() and h.state.locked_round == 0
    assert h.my_votes(VoteType.PRECOMMIT, 0) == [block.block_id()]
    h.votes(VoteType.PRECOMMIT, 0, block, h.others(2))
    commits = [a for a in h.actions if isinstance(a, CommitBlock)]
    assert len(commits) == 1 and commits[0].block == block
    assert commits[0].commit.block_id == block.block_id()
    h.feed(BlockExecuted(1, b"app1", keys.valset.advance()))
    assert (h.state.height, h.state.step, h.state.app_hash) == (2, Step.NEW_HEIGHT, b"app1")
    assert h.state.last_commit == commits[0].commit
    assert h.timeouts()[-1] == ScheduleTimeout(2, 0, Step.NEW_HEIGHT, 7)


def test_timeouts_grow_with_the_round(keys: Keys) -> None:
    h = Harness(keys)
    h.start()
    h.feed(TimeoutFired(1, 0, Step.PROPOSE))
    assert h.my_votes(VoteType.PREVOTE, 0) == [None]
    h.votes(VoteType.PREVOTE, 0, None, h.others(2))
    assert h.timeouts()[-1] == ScheduleTimeout(1, 0, Step.PREVOTE, 50)  # line 34 fires first
    assert h.my_votes(VoteType.PRECOMMIT, 0) == [None]
    h.votes(VoteType.PRECOMMIT, 0, None, h.others(2))
    assert h.timeouts()[-1] == ScheduleTimeout(1, 0, Step.PRECOMMIT, 60)
    h.feed(TimeoutFired(1, 0, Step.PRECOMMIT))
    assert h.state.round == 1
    assert h.timeouts()[-1] == ScheduleTimeout(1, 1, Step.PROPOSE, 110)
    h.feed(TimeoutFired(1, 1, Step.PROPOSE))
    block = h.block(b"x")
    h.votes(VoteType.PREVOTE, 1, block, h.others(1))
    h.votes(VoteType.PREVOTE, 1, None, h.others(2)[1:])  # +2/3 prevotes, no majority
    assert h.timeouts()[-1] == ScheduleTimeout(1, 1, Step.PREVOTE, 55)
    h.feed(TimeoutFired(1, 0, Step.PREVOTE))  # stale: ignored
    assert h.state.step == Step.PREVOTE
    h.feed(TimeoutFired(1, 1, Step.PREVOTE))
    assert h.state.step == Step.PRECOMMIT and h.my_votes(VoteType.PRECOMMIT, 1) == [None]


def _lock_on(h: Harness, block: Block) -> None:
    h.start()
    h.propose(0, block)
    h.votes(VoteType.PREVOTE, 0, block, h.others(2))
    assert h.state.locked_block == block.block_id()
    h.votes(VoteType.PRECOMMIT, 0, None, h.others(2))  # no decision in round 0
    h.feed(TimeoutFired(1, 0, Step.PRECOMMIT))
    assert h.state.round == 1


def test_the_broken_core_ignores_its_lock(keys: Keys) -> None:
    h = Harness(keys, broken=True)
    a, b = h.block(b"a"), h.block(b"b")
    _lock_on(h, a)
    h.propose(1, b)
    assert h.my_votes(VoteType.PREVOTE, 1) == [b.block_id()]


def test_polka_after_precommit_sets_valid_value(keys: Keys) -> None:
    h = Harness(keys)
    h.start()
    block = h.block(b"v")
    h.feed(TimeoutFired(1, 0, Step.PROPOSE))  # we prevoted nil
    h.votes(VoteType.PREVOTE, 0, None, h.others(1))
    h.feed(TimeoutFired(1, 0, Step.PREVOTE))  # we precommit nil
    assert h.state.step == Step.PRECOMMIT
    h.propose(0, block)
    h.votes(VoteType.PREVOTE, 0, block, h.others(3)[1:])
    h.votes(VoteType.PREVOTE, 0, block, h.others(3)[:1])  # a conflicting vote still counts
    assert h.state.valid_block == block.block_id() and h.state.locked_round == -1


def test_forged_and_misattributed_messages_are_ignored(keys: Keys) -> None:
    h = Harness(keys)
    h.start()
    block = h.block(b"x")
    vs = keys.valset
    wrong = next(
        i for i in range(len(vs)) if vs.validators[i].address != vs.proposer_for_round(0).address
    )
    p = Proposal(1, 0, -1, block.block_id(), 3)
    p = replace(p, signature=keys.signer_at(wrong).sign(p.sign_bytes(CHAIN)))
    h.feed(ProposalReceived(ProposalMessage(p, block)))  # signed by a non-proposer
    h.feed(ProposalReceived(ProposalMessage(replace(p, block_id=h.block(b"y").block_id()), block)))
    assert h.state.step == Step.PROPOSE and h.state.proposals == {}
    vote = keys.vote(h.others(1)[0], VoteType.PREVOTE, 1, 0, None)
    h.feed(VoteReceived(replace(vote, signature=bytes(64))))
    h.feed(VoteReceived(replace(vote, validator_index=h.me)))
    h.feed(VoteReceived(keys.vote(h.others(1)[0], VoteType.PREVOTE, 1, 0, None, chain_id="other")))
    assert h.state.votes == {}


def test_equivocation_is_reported_once(keys: Keys) -> None:
    h = Harness(keys)
    h.start()
    i = h.others(1)[0]
    a, b = h.block(b"a"), h.block(b"b")
    for _ in range(2):
        h.votes(VoteType.PREVOTE, 0, a, [i])
        h.votes(VoteType.PREVOTE, 0, b, [i])
    found = [x.evidence for x in h.actions if isinstance(x, EvidenceFound)]
    assert len(found) == 1
    assert {found[0].vote_a.block_id, found[0].vote_b.block_id} == {a.block_id(), b.block_id()}


def test_catch_up_with_a_verified_commit(keys: Keys) -> None:
    h = Harness(keys)
    h.start()
    block = h.block(b"decided elsewhere")
    votes = {i: keys.vote(i, VoteType.PRECOMMIT, 1, 4, block.block_id()) for i in (0, 1, 2)}
    good = commit_from_votes(keys.valset, 1, 4, block.block_id(), votes)
    h.feed(
        CommitReceived(
            block,
            replace(
                good, signatures=good.signatures[:2] + good.signatures[3:] + good.signatures[2:3]
            ),
        )
    )
    assert h.state.decision is None  # bad commit ignored
    h.feed(CommitReceived(block, good))
    assert h.state.decision == (block, good)
    assert any(isinstance(a, CommitBlock) for a in h.actions)


def test_next_height_messages_wait_for_the_height(keys: Keys) -> None:
    h = Harness(keys)
    h.start()
    early = keys.vote(h.others(1)[0], VoteType.PREVOTE, 2, 0, None)
    h.feed(VoteReceived(early))
    assert h.state.future == (VoteReceived(early),)
    block = h.block(b"x")
    votes = {i: keys.vote(i, VoteType.PRECOMMIT, 1, 0, block.block_id()) for i in (0, 1, 2)}
    h.feed(CommitReceived(block, commit_from_votes(keys.valset, 1, 0, block.block_id(), votes)))
    h.feed(BlockExecuted(1, b"app", keys.valset.advance()))
    assert h.state.height == 2 and (0, VoteType.PREVOTE) in h.state.votes


def test_replay_then_resume_continues_where_it_stopped(keys: Keys) -> None:
    h = Harness(keys)
    h.start()
    block = h.block(b"x")
    h.propose(0, block)
    h.votes(VoteType.PREVOTE, 0, None, h.others(1))
    h.votes(VoteType.PREVOTE, 0, block, h.others(3)[1:])  # +2/3 any, no polka
    fresh = new_height_state(h.config, 1, keys.valset, app_hash=APP_HASH)
    rebuilt = replay(fresh, h.events)
    assert (rebuilt.round, rebuilt.step, rebuilt.votes) == (
        h.state.round,
        h.state.step,
        h.state.votes,
    )
    _, actions = resume(rebuilt)
    assert ScheduleTimeout(1, 0, Step.PREVOTE, 50) in actions
    own = [a.message for a in actions if isinstance(a, Broadcast)]
    assert any(isinstance(m, Vote) and m.validator_index == h.me for m in own)
    assert gossip_messages(rebuilt) == [m for m in own]
    # a signature requested but not yet logged is requested again
    pending = replace(
        rebuilt,
        own_requests={(0, 2): Vote(VoteType.PRECOMMIT, 1, 0, None, 0, h.config.my_address, h.me)},
    )
    assert any(isinstance(a, SignVote) for a in resume(pending)[1])


def test_we_propose_in_our_round(keys: Keys) -> None:
    vs = keys.valset
    proposer = vs.index_of(vs.proposer_for_round(0).address)
    h = Harness(keys, me=proposer)
    h.start()
    requests = [a for a in h.actions if isinstance(a, RequestProposal)]
    assert len(requests) == 1 and requests[0].round == 0 and requests[0].last_commit is None
    sent = [
        a.message
        for a in h.actions
        if isinstance(a, Broadcast) and isinstance(a.message, ProposalMessage)
    ]
    assert len(sent) == 1 and sent[0].proposal.pol_round == -1
    assert h.my_votes(VoteType.PREVOTE, 0) == [sent[0].block.block_id()]


def test_six_of_ten_is_not_a_polka(keys: Keys) -> None:
    """Powers 4,3,2,1: us (1) + 3 + 2 = 6 of 10 is not more than 2/3; adding 4 is.
    (Exactly 2/3 is refused too: see test_thresholds_are_strict.)"""
    h = Harness(keys, me=3)  # the weakest
    h.start()
    block = h.block(b"x")
    if h.state.step == Step.PROPOSE:
        h.propose(0, block)
    block = h.state.blocks[h.state.first_proposal[0]]
    h.votes(VoteType.PREVOTE, 0, block, [1, 2])
    assert h.state.step == Step.PREVOTE and h.state.locked_round == -1
    h.votes(VoteType.PREVOTE, 0, block, [0])
    assert h.state.locked_round == 0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 2), st.booleans()),
        max_size=25,
    )
)
def test_step_never_mutates_its_input(keys: Keys, script: list) -> None:
    h = Harness(keys)
    h.start()
    blocks = [h.block(b"a"), h.block(b"b")]
    for who, round_, which, precommit in script:
        kind = VoteType.PRECOMMIT if precommit else VoteType.PREVOTE
        bid = None if which == 2 else blocks[which].block_id()
        event = VoteReceived(keys.vote(who, kind, 1, round_, bid))
        before = copy.deepcopy(h.state.__dict__)
        new, _ = step(h.state, event)
        assert h.state.__dict__ == before
        h.state = new


def test_catch_up_block_with_swapped_txs_is_refused(keys: Keys) -> None:
    """A commit signs the header only: the txs must match its data_hash."""
    h = Harness(keys)
    h.start()
    block = h.block(b"decided")
    votes = {i: keys.vote(i, VoteType.PRECOMMIT, 1, 0, block.block_id()) for i in (0, 1, 2)}
    commit = commit_from_votes(keys.valset, 1, 0, block.block_id(), votes)
    h.feed(CommitReceived(replace(block, txs=(b"forged",)), commit))
    assert h.state.decision is None
    h.feed(CommitReceived(block, commit))
    assert h.state.decision == (block, commit)


def test_gossip_carries_the_valid_values_proposal_even_if_it_came_second(keys: Keys) -> None:
    h = Harness(keys)
    a, b = h.block(b"a"), h.block(b"b")
    h.valid = lambda block: None if block == a else True
    h.start()
    h.propose(0, a)
    h.propose(0, b)  # the proposer signed two; b gathers the polka
    h.votes(VoteType.PREVOTE, 0, b, h.others(2))
    assert h.state.valid_block == b.block_id()
    proposals = [m for m in gossip_messages(h.state) if isinstance(m, ProposalMessage)]
    assert {m.block.block_id() for m in proposals} == {a.block_id(), b.block_id()}
