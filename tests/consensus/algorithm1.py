"""Algorithm 1 of "The latest gossip on BFT consensus", rule by rule, as checks on a core.

Each check drives one core (a module with ``step`` and ``resume``: ``consensus.core`` or an
edited copy of it, see ``mutants/``) through the harness and asserts what the paper's
pseudocode says must happen, and what must NOT. Expectations are written from the paper, not
from the core's helpers: thresholds are counted by hand on the test set's powers 4, 3, 2, 1
(total 10: "2f+1" is 7 or more, "f+1" is 4 or more), and commits are checked with
``verify_commit``. We are validator 3 (power 1), proposer of none of the rounds 0-3
(validators 0, 1, 2, 0 propose them).

``CHECKS`` maps each check's name to (paper line, function); ``test_algorithm1.py`` runs
them all on ``consensus.core``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from types import ModuleType

from consensus_helpers import CHAIN, Keys
from core_harness import Harness

from consensus.commit import commit_from_votes, verify_commit, verify_conflicting_commits
from consensus.events import (
    CommitReceived,
    ProposalReceived,
    ScheduleTimeout,
    SignVote,
    Step,
    TimeoutFired,
    ValidateBlock,
)
from consensus.types import Block, VoteType

PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT
ME = 3
Check = Callable[[Keys, ModuleType], None]
CHECKS: dict[str, tuple[int, Check]] = {}


def rule(line: int) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        CHECKS[check.__name__] = (line, check)
        return check

    return register


def _harness(keys: Keys, core: ModuleType) -> Harness:
    h = Harness(keys, core=core)
    assert h.me == ME and [v.voting_power for v in keys.valset.validators] == [4, 3, 2, 1]
    return h


def _started(keys: Keys, core: ModuleType) -> Harness:
    """A harness in round 0, step propose (the height started)."""
    h = _harness(keys, core)
    h.start()
    return h


def _lock_on(h: Harness, block: Block, round_: int) -> None:
    """In ``round_``: its proposer proposes ``block`` and 0 and 1 (7 of 10) prevote it."""
    h.to_round(round_)
    h.propose(round_, block)
    h.votes(PREVOTE, round_, block, [0, 1])
    assert (h.state.locked_block, h.state.locked_round) == (block.block_id(), round_)


def _sign_votes(h: Harness) -> int:
    return sum(1 for a in h.actions if isinstance(a, SignVote))


# --- line 22: upon PROPOSAL(h, r, v, -1) from proposer(h, r) while step = propose ----------


@rule(22)
def line22_prevotes_a_valid_proposal(keys: Keys, core: ModuleType) -> None:
    h = _started(keys, core)
    a = h.block(b"a")
    h.propose(0, a)
    assert h.my_votes(PREVOTE, 0) == [a.block_id()] and h.state.step == Step.PREVOTE


@rule(22)
def line22_prevotes_nil_for_an_invalid_proposal(keys: Keys, core: ModuleType) -> None:
    h = _harness(keys, core)
    h.valid = lambda block: False
    h.start()
    h.propose(0, h.block(b"the app says no"))
    assert h.my_votes(PREVOTE, 0) == [None]
    h2 = _started(keys, core)
    h2.propose(0, h2.block(b"stale app hash", app_hash=b"\x01" * 32))
    assert h2.my_votes(PREVOTE, 0) == [None]
    assert not any(isinstance(a, ValidateBlock) for a in h2.actions)  # refused before the app


@rule(22)
def line22_a_locked_validator_prevotes_only_its_locked_value(keys: Keys, core: ModuleType) -> None:
    h = _started(keys, core)
    a, b = h.block(b"a"), h.block(b"b")
    _lock_on(h, a, 0)
    h.to_round(1)
    h.propose(1, b)
    assert h.my_votes(PREVOTE, 1) == [None]
    h.to_round(2)
    h.propose(2, a)  # lockedValue = v: prevote it, even with valid round -1
    assert h.my_votes(PREVOTE, 2) == [a.block_id()]


@rule(22)
def line22_only_the_rounds_proposer_is_heard(keys: Keys, core: ModuleType) -> None:
    h = _started(keys, core)
    a = h.block(b"a")
    good = h.proposal(0, a)
    h.feed(ProposalReceived(h.proposal(0, a, signer=1)))  # signed by a non-proposer
    h.feed(ProposalReceived(replace(good, proposal=replace(good.proposal, signature=bytes(64)))))
    h.feed(ProposalReceived(replace(good, proposal=replace(good.proposal, round=1))))
    h.feed(ProposalReceived(replace(good, block=h.block(b"other"))))  # block id mismatch
    assert h.my_votes(PREVOTE, 0) == [] and h.state.step == Step.PROPOSE
    assert h.state.proposals == {}
    h.feed(ProposalReceived(good))
    assert h.my_votes(PREVOTE, 0) == [a.block_id()]


@rule(22)
def line22_fires_only_in_step_propose(keys: Keys, core: ModuleType) -> None:
    h = _started(keys, core)
    h.feed(TimeoutFired(1, 0, Step.PROPOSE))
    h.propose(0, h.block(b"late"))
    assert h.my_votes(PREVOTE, 0) == [None] and _sign_votes(h) == 1


@rule(22)
def line22_every_proposal_of_the_round_is_considered(keys: Keys, core: ModuleType) -> None:
    """A byzantine proposer signs two blocks; the first never gets the app's verdict. The
    rule fires on the second (the paper's upon-rule holds for it), not at timeoutPropose."""
    h = _harness(keys, core)
    a, b = h.block(b"a"), h.block(b"b")
    h.valid = lambda block: None if block == a else True
    h.start()
    h.propose(0, a)
    assert h.my_votes(PREVOTE, 0) == []
    h.propose(0, b)
    assert h.my_votes(PREVOTE, 0) == [b.block_id()]


# --- line 28: upon PROPOSAL(h, r, v, vr) AND 2f+1 PREVOTE(h, vr, id(v)), 0 <= vr < r ------


@rule(28)
def line28_waits_for_two_thirds_prevotes_in_the_valid_round(keys: Keys, core: ModuleType) -> None:
    h = _started(keys, core)
    b = h.block(b"b")
    h.to_round(1)
    h.propose(1, b, pol_round=0)
    assert h.my_votes(PREVOTE, 1) == [] and h.state.step == Step.PROPOSE
    h.votes(PREVOTE, 0, b, [0, 2])  # 6 of 10: not 2f+1
    h.votes(PREVOTE, 1, b, [1])  # the wrong round
    h.votes(PREVOTE, 0, None, [1])  # 9 of 10 in round 0, but not for b
    assert h.my_votes(PREVOTE, 1) == [] and h.state.step == Step.PROPOSE
    h.votes(PREVOTE, 0, b, [1])  # 1 equivocates: b has 9 of 10
    assert h.my_votes(PREVOTE, 1) == [b.block_id()]


@rule(28)
def line28_a_lock_newer_than_the_valid_round_prevotes_nil(keys: Keys, core: ModuleType) -> None:
    h = _started(keys, core)
    a, b = h.block(b"a"), h.block(b"b")
    h.votes(PREVOTE, 0, b, [0, 1])  # a polka for b in round 0 ...
    _lock_on(h, a, 1)  # ... then a lock on a in round 1
    h.to_round(2)
    h.propose(2, b, pol_round=0)
    assert h.my_votes(PREVOTE, 2) == [None]


@rule(28)
def line28_a_polka_no_older_than_the_lock_unlocks(keys: Keys, core: ModuleType) -> None:
    """lockedRound <= vr: a later polka, and one in the lock's own round, release the lock."""
    h = _started(keys, core)
    a, b = h.block(b"a"), h.block(b"b")
    _lock_on(h, a, 0)
    h.to_round(1)
    h.votes(PREVOTE, 1, b, [0, 1])
    h.to_round(2)
    h.propose(2, b, pol_round=1)
    assert h.my_votes(PREVOTE, 2) == [b.block_id()]
    same = _started(keys, core)
    _lock_on(same, a, 0)
    same.votes(PREVOTE, 0, b, [0, 1])  # equivocators: a polka for b in round 0 too
    same.to_round(1)
    same.propose(1, b, pol_round=0)
    assert same.my_votes(PREVOTE, 1) == [b.block_id()]


@rule(28)
def line28_the_locked_value_is_prevoted_whatever_its_valid_round(
    keys: Keys, core: ModuleType
) -> None:
    h = _started(keys, core)
    a = h.block(b"a")
    h.votes(PREVOTE, 0, a, [0, 1])
    _lock_on(h, a, 1)
    h.to_round(2)
    h.propose(2, a, pol_round=0)  # vr 0 < lockedRound 1, but lockedValue = v
    assert h.my_votes(PREVOTE, 2) == [a.block_id()]


@rule(28)
def line28_prevotes_nil_for_an_invalid_value_despite_its_polka(
    keys: Keys, core: ModuleType
) -> None:
    h = _harness(keys, core)
    b = h.block(b"b")
    h.valid = lambda block: block != b
    h.start()
    h.votes(PREVOTE, 0, b, [0, 1])
    h.to_round(1)
    h.propose(1, b, pol_round=0)
    assert h.my_votes(PREVOTE, 1) == [None]


# --- line 34: upon 2f+1 PREVOTE(h, r, *) while step = prevote for the first time ------------


@rule(34)
def line34_any_two_thirds_prevotes_schedule_timeout_prevote_once(
    keys: Keys, core: ModuleType
) -> None:
    h = _started(keys, core)
    a, b = h.block(b"a"), h.block(b"b")
    h.feed(TimeoutFired(1, 0, Step.PROPOSE))  # our nil prevote: 1
    prevote_timeouts = lambda: [t for t in h.timeouts() if t.step == Step.PREVOTE]  # noqa: E731
    h.votes(PREVOTE, 0, a, [1])
    h.votes(PREVOTE, 0, None, [2])  # 6 of 10
    assert prevote_timeouts() == []
    h.votes(PREVOTE, 0, b, [0])  # 10 of 10, no value has 2f+1
    assert prevote_timeouts() == [ScheduleTimeout(1, 0, Step.PREVOTE, 50)]
    assert h.my_votes(PRECOMMIT, 0) == [] and h.state.step == Step.PREVOTE


# --- line 36: upon PROPOSAL(h, r, v, *) AND 2f+1 PREVOTE(h, r, id(v)), valid(v), step >= prevote


@rule(36)
def line36_a_polka_in_step_prevote_locks_and_precommits(keys: Keys, core: ModuleType) -> None:
    h = _started(keys, core)
    a = h.block(b"a")
    h.propose(0, a)
    h.votes(PREVOTE, 0, a, [2])  # 3 of 10 with ours
    assert h.my_votes(PRECOMMIT, 0) == [] and h.state.locked_round == -1
    h.votes(PREVOTE, 0, a, [0])  # 7 of 10
    s = h.state
    assert h.my_votes(PRECOMMIT, 0) == [a.block_id()] and s.step == Step.PRECOMMIT
    assert (s.locked_block, s.locked_round, s.valid_block, s.valid_round) == (
        a.block_id(), 0, a.block_id(), 0
    )


@rule(36)
def line36_a_polka_after_precommitting_sets_only_the_valid_value(
    keys: Keys, core: ModuleType
) -> None:
    h = _started(keys, core)
    a = h.block(b"a")
    h.feed(TimeoutFired(1, 0, Step.PROPOSE))
    h.feed(TimeoutFired(1, 0, Step.PREVOTE))  # we precommitted nil
    h.propose(0, a)
    h.votes(PREVOTE, 0, a, [0, 1])
    s = h.state
    assert h.my_votes(PRECOMMIT, 0) == [None] and _sign_votes(h) == 2
    assert (s.locked_block, s.locked_round, s.valid_block, s.valid_round) == (
        None, -1, a.block_id(), 0
    )


@rule(36)
def line36_needs_the_proposal_and_its_validity(keys: Keys, core: ModuleType) -> None:
    h = _harness(keys, core)
    a, c = h.block(b"a"), h.block(b"never proposed")
    h.valid = lambda block: block != a
    h.start()
    h.propose(0, a)  # invalid: we prevote nil
    h.votes(PREVOTE, 0, a, [0, 1])
    h.votes(PREVOTE, 1, c, [0, 1])  # round 1 (we skip to it): a polka without a proposal
    s = h.state
    assert h.my_votes(PRECOMMIT, 0) == [] and h.my_votes(PRECOMMIT, 1) == []
    assert (s.locked_block, s.valid_block) == (None, None)


# --- line 44: upon 2f+1 PREVOTE(h, r, nil) while step = prevote -----------------------------


@rule(44)
def line44_a_nil_polka_precommits_nil(keys: Keys, core: ModuleType) -> None:
    h = _started(keys, core)
    h.votes(PREVOTE, 0, None, [0, 1])  # step propose: not yet
    assert h.my_votes(PRECOMMIT, 0) == [] and h.state.step == Step.PROPOSE
    h2 = _started(keys, core)
    h2.feed(TimeoutFired(1, 0, Step.PROPOSE))  # our nil: 1
    h2.votes(PREVOTE, 0, None, [0])  # nil 5
    h2.votes(PREVOTE, 0, h2.block(b"a"), [1])  # 8 of 10 in all, nil short of 2f+1
    assert h2.my_votes(PRECOMMIT, 0) == [] and h2.state.step == Step.PREVOTE
    h2.votes(PREVOTE, 0, None, [2])  # nil 7
    assert h2.my_votes(PRECOMMIT, 0) == [None] and h2.state.step == Step.PRECOMMIT


# --- line 47: upon 2f+1 PRECOMMIT(h, r, *) for the first time -------------------------------


@rule(47)
def line47_any_two_thirds_precommits_schedule_timeout_precommit_once(
    keys: Keys, core: ModuleType
) -> None:
    h = _started(keys, core)
    a = h.block(b"a")
    timeouts = lambda: [t for t in h.timeouts() if t.step == Step.PRECOMMIT]  # noqa: E731
    h.votes(PRECOMMIT, 0, a, [0])
    h.votes(PRECOMMIT, 0, None, [2])
    assert timeouts() == []
    h.votes(PRECOMMIT, 0, None, [1])  # 9 of 10, no value has 2f+1
    h.votes(PRECOMMIT, 0, None, [3])  # not us, but a forged index is not counted twice
    assert timeouts() == [ScheduleTimeout(1, 0, Step.PRECOMMIT, 60)]
    assert h.commits() == []


# --- line 49: upon PROPOSAL(h, r, v, *) AND 2f+1 PRECOMMIT(h, r, id(v)), valid(v) ---------


@rule(49)
def line49_decides_a_valid_proposal_with_two_thirds_precommits(
    keys: Keys, core: ModuleType
) -> None:
    h = _started(keys, core)
    a = h.block(b"a")
    h.to_round(2)
    h.propose(0, a)  # a proposal of an earlier round
    h.votes(PRECOMMIT, 0, a, [0])
    h.votes(PRECOMMIT, 0, a, [2])  # 6 of 10
    assert h.commits() == []
    h.votes(PRECOMMIT, 0, a, [1])
    (commit,) = h.commits()
    assert commit.block == a and commit.commit.round == 0
    assert verify_commit(CHAIN, keys.valset, a.block_id(), 1, commit.commit) == 9
    assert h.state.step == Step.COMMIT


@rule(49)
def line49_never_decides_an_unknown_or_invalid_block(keys: Keys, core: ModuleType) -> None:
    h = _harness(keys, core)
    a = h.block(b"a")
    h.valid = lambda block: None
    h.start()
    h.votes(PRECOMMIT, 0, a, [0, 1, 2])  # a: not proposed yet
    assert h.commits() == []
    h.propose(0, a)  # a: the app has not answered
    assert h.commits() == []
    h.answer(a, True)
    assert [c.block for c in h.commits()] == [a]
    bad = _harness(keys, core)
    b = bad.block(b"b")
    bad.valid = lambda block: False
    bad.start()
    bad.propose(0, b)
    bad.votes(PRECOMMIT, 0, b, [0, 1, 2])
    assert bad.commits() == [] and bad.state.decision is None


@rule(49)
def line49_two_values_with_two_thirds_precommits_halt_with_both_quorums(
    keys: Keys, core: ModuleType
) -> None:
    """More than a third equivocates (0 and 1: 7 of 10): neither value may be decided."""
    h = _harness(keys, core)
    a, b = h.block(b"a"), h.block(b"b")
    h.start()
    h.votes(PRECOMMIT, 0, a, [0, 1])
    h.votes(PRECOMMIT, 0, b, [0, 1])
    h.propose(0, a)
    h.propose(0, b)
    assert h.commits() == []
    (halt,) = h.halts()
    evidence = halt.evidence
    verify_conflicting_commits(CHAIN, keys.valset, evidence)
    assert {evidence.commit_a.block_id, evidence.commit_b.block_id} == {a.block_id(), b.block_id()}
    addresses = [keys.valset.validators[i].address for i in (0, 1)]
    assert evidence.double_signers() == sorted(addresses)
    state, actions = h.core.resume(h.state)  # a restart halts again
    assert [x for x in actions if x.__class__.__name__ == "Halt"] == [halt]
    _, actions = h.core.step(state, TimeoutFired(1, 0, Step.PRECOMMIT))
    assert actions == []
    across = _started(keys, core)  # quorums in two rounds: as impossible below a third
    across.propose(0, a)
    across.votes(PRECOMMIT, 1, b, [0, 1])  # b: unknown to us, no decision yet
    across.votes(PRECOMMIT, 0, a, [0, 1])
    assert across.commits() == [] and len(across.halts()) == 1


@rule(49)
def line49_a_catch_up_commit_against_our_quorum_halts(keys: Keys, core: ModuleType) -> None:
    h = _harness(keys, core)
    a, b = h.block(b"a"), h.block(b"b")
    h.start()
    h.votes(PRECOMMIT, 0, a, [0, 1])  # a: never proposed to us
    votes = {i: keys.vote(i, PRECOMMIT, 1, 0, b.block_id()) for i in (0, 1, 2)}
    h.feed(CommitReceived(b, commit_from_votes(keys.valset, 1, 0, b.block_id(), votes)))
    assert h.commits() == [] and len(h.halts()) == 1
    fine = _started(keys, core)  # the same catch-up, agreeing with our quorum: decided
    fine.votes(PRECOMMIT, 0, b, [0, 1])
    fine.feed(CommitReceived(b, commit_from_votes(keys.valset, 1, 0, b.block_id(), votes)))
    assert [c.block for c in fine.commits()] == [b] and fine.halts() == []


# --- line 55: upon f+1 <*, h, round, *, *> with round > round_p ------------------------------


@rule(55)
def line55_f_plus_one_of_a_higher_round_starts_it(keys: Keys, core: ModuleType) -> None:
    h = _started(keys, core)
    h.votes(PREVOTE, 2, None, [1])  # 3 of 10: not f+1
    h.votes(PRECOMMIT, 1, None, [2])  # another round: not added up
    assert h.state.round == 0
    h.votes(PRECOMMIT, 2, None, [2])  # 5 in round 2
    assert h.state.round == 2 and h.state.step == Step.PROPOSE
    h.votes(PREVOTE, 1, None, [0])  # f+1 of a lower round: nothing
    assert h.state.round == 2
    assert ScheduleTimeout(1, 2, Step.PROPOSE, 120) in h.timeouts()


# --- lines 57, 61, 65: the timeouts ---------------------------------------------------------


@rule(57)
def line57_timeout_propose_prevotes_nil_in_its_round_and_step(
    keys: Keys, core: ModuleType
) -> None:
    h = _started(keys, core)
    h.feed(TimeoutFired(2, 0, Step.PROPOSE))  # another height
    h.feed(TimeoutFired(1, 1, Step.PROPOSE))  # another round
    assert _sign_votes(h) == 0 and h.state.step == Step.PROPOSE
    h.feed(TimeoutFired(1, 0, Step.PROPOSE))
    assert h.my_votes(PREVOTE, 0) == [None] and h.state.step == Step.PREVOTE
    h.feed(TimeoutFired(1, 0, Step.PROPOSE))  # step is prevote now
    h.to_round(1)
    h.feed(TimeoutFired(1, 0, Step.PROPOSE))  # stale
    assert _sign_votes(h) == 1 and h.state.step == Step.PROPOSE


@rule(61)
def line61_timeout_prevote_precommits_nil_in_its_round_and_step(
    keys: Keys, core: ModuleType
) -> None:
    h = _started(keys, core)
    a = h.block(b"a")
    h.feed(TimeoutFired(1, 0, Step.PREVOTE))  # step propose
    assert _sign_votes(h) == 0 and h.state.step == Step.PROPOSE
    h.propose(0, a)
    h.feed(TimeoutFired(1, 1, Step.PREVOTE))  # another round
    assert h.my_votes(PRECOMMIT, 0) == []
    h.feed(TimeoutFired(1, 0, Step.PREVOTE))
    assert h.my_votes(PRECOMMIT, 0) == [None] and h.state.step == Step.PRECOMMIT
    h.feed(TimeoutFired(1, 0, Step.PREVOTE))
    assert _sign_votes(h) == 2 and h.state.locked_round == -1


@rule(65)
def line65_timeout_precommit_starts_the_next_round(keys: Keys, core: ModuleType) -> None:
    h = _started(keys, core)
    h.feed(TimeoutFired(2, 0, Step.PRECOMMIT))  # another height
    h.feed(TimeoutFired(1, 1, Step.PRECOMMIT))  # another round
    assert h.state.round == 0
    h.feed(TimeoutFired(1, 0, Step.PRECOMMIT))
    assert (h.state.round, h.state.step) == (1, Step.PROPOSE)
    assert h.timeouts()[-1] == ScheduleTimeout(1, 1, Step.PROPOSE, 110)
    h.feed(TimeoutFired(1, 0, Step.PRECOMMIT))  # stale
    assert h.state.round == 1
    done = _started(keys, core)  # decided: no more rounds
    a = done.block(b"a")
    done.propose(0, a)
    done.votes(PRECOMMIT, 0, a, [0, 1])
    done.feed(TimeoutFired(1, 0, Step.PRECOMMIT))
    assert (done.state.round, done.state.step) == (0, Step.COMMIT)
