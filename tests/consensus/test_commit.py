"""Commit certificates verified alone (light client / block sync), evidence, message forms."""

from __future__ import annotations

from dataclasses import replace

import pytest
from consensus_helpers import CHAIN, Keys, block_id

from consensus.blocks import make_block
from primitives.codec import decode, encode
from consensus.commit import (
    DuplicateSignerError,
    EvidenceError,
    InvalidSignatureError,
    NotEnoughPowerError,
    WrongBlockError,
    WrongChainIdError,
    WrongHeightError,
    WrongSignerError,
    commit_from_votes,
    verify_commit,
    verify_conflicting_commits,
    verify_duplicate_vote,
    verify_signed_header,
)
from primitives.hashing import EMPTY_HASH
from consensus.types import (
    ABSENT,
    Block,
    BlockID,
    Commit,
    CommitFlag,
    CommitSig,
    ConflictingCommits,
    DuplicateVoteEvidence,
    Header,
    MessageError,
    Proposal,
    Vote,
    VoteType,
)

BID = block_id(b"block")
HEIGHT = 7


def make_commit(
    keys: Keys, signers: list[int], nil: list[int] = (), chain_id: str = CHAIN
) -> Commit:
    votes = {i: keys.vote(i, VoteType.PRECOMMIT, HEIGHT, 2, BID, chain_id) for i in signers}
    votes.update({i: keys.vote(i, VoteType.PRECOMMIT, HEIGHT, 2, None, chain_id) for i in nil})
    return commit_from_votes(keys.valset, HEIGHT, 2, BID, votes)


def test_valid_commit_returns_power(keys: Keys) -> None:
    commit = make_commit(keys, [0, 1, 2], nil=[3])  # 4+3+2 = 9 of 10
    assert verify_commit(CHAIN, keys.valset, BID, HEIGHT, commit) == 9
    assert commit.signatures[3].flag == CommitFlag.NIL


def test_wrong_chain_id(keys: Keys) -> None:
    commit = make_commit(keys, [0, 1, 2], chain_id="other-chain")
    with pytest.raises(InvalidSignatureError, match="chain"):
        verify_commit(CHAIN, keys.valset, BID, HEIGHT, commit)


def test_light_client_header_of_other_chain(keys: Keys) -> None:
    block = _block(keys, chain_id="other-chain")
    commit = commit_from_votes(
        keys.valset,
        1,
        0,
        block.block_id(),
        {
            i: keys.vote(i, VoteType.PRECOMMIT, 1, 0, block.block_id(), "other-chain")
            for i in range(4)
        },
    )
    with pytest.raises(WrongChainIdError):
        verify_signed_header(CHAIN, keys.valset, block.header, commit)
    assert verify_signed_header("other-chain", keys.valset, block.header, commit) == 10


def test_wrong_signer(keys: Keys) -> None:
    commit = make_commit(keys, [0, 1, 2])
    swapped = list(commit.signatures)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(WrongSignerError):
        verify_commit(CHAIN, keys.valset, BID, HEIGHT, replace(commit, signatures=tuple(swapped)))
    outsider = keys.outsider
    vote = Vote(VoteType.PRECOMMIT, HEIGHT, 2, BID, 5, outsider.address, 3)
    forged = CommitSig(
        CommitFlag.COMMIT, outsider.address, 5, outsider.sign(vote.sign_bytes(CHAIN))
    )
    sigs = list(commit.signatures)
    sigs[3] = forged
    with pytest.raises(WrongSignerError):
        verify_commit(CHAIN, keys.valset, BID, HEIGHT, replace(commit, signatures=tuple(sigs)))
    with pytest.raises(WrongSignerError, match="slots"):
        verify_commit(
            CHAIN, keys.valset, BID, HEIGHT, replace(commit, signatures=commit.signatures[:3])
        )


def test_not_enough_power(keys: Keys) -> None:
    with pytest.raises(NotEnoughPowerError):
        verify_commit(CHAIN, keys.valset, BID, HEIGHT, make_commit(keys, [0, 2]))  # 6 of 10
    with pytest.raises(NotEnoughPowerError):  # 4+3 = 7: more than 2/3 of 10? 21 > 20: yes
        verify_commit(CHAIN, keys.valset, BID, HEIGHT, make_commit(keys, [1, 3, 2], nil=[0]))  # 6
    assert verify_commit(CHAIN, keys.valset, BID, HEIGHT, make_commit(keys, [0, 1])) == 7


def test_duplicate_signer(keys: Keys) -> None:
    commit = make_commit(keys, [0, 1, 2])
    sigs = list(commit.signatures)
    sigs[3] = sigs[0]
    with pytest.raises(DuplicateSignerError):
        verify_commit(CHAIN, keys.valset, BID, HEIGHT, replace(commit, signatures=tuple(sigs)))


def test_bad_signature_even_on_nil(keys: Keys) -> None:
    commit = make_commit(keys, [0, 1, 2], nil=[3])
    for slot in (0, 3):
        sigs = list(commit.signatures)
        bad = sigs[slot].signature
        sigs[slot] = replace(sigs[slot], signature=bytes([bad[0] ^ 1]) + bad[1:])
        with pytest.raises(InvalidSignatureError):
            verify_commit(CHAIN, keys.valset, BID, HEIGHT, replace(commit, signatures=tuple(sigs)))


def test_wrong_height_and_block(keys: Keys) -> None:
    commit = make_commit(keys, [0, 1, 2])
    with pytest.raises(WrongHeightError):
        verify_commit(CHAIN, keys.valset, BID, HEIGHT + 1, commit)
    with pytest.raises(WrongBlockError):
        verify_commit(CHAIN, keys.valset, block_id(b"other"), HEIGHT, commit)
    # a commit relabelled for another block: its signatures no longer verify
    with pytest.raises(InvalidSignatureError):
        other = block_id(b"other")
        verify_commit(CHAIN, keys.valset, other, HEIGHT, replace(commit, block_id=other))


def test_precommits_for_other_blocks_are_left_out(keys: Keys) -> None:
    votes = {i: keys.vote(i, VoteType.PRECOMMIT, HEIGHT, 2, BID) for i in (0, 1)}
    votes[2] = keys.vote(2, VoteType.PRECOMMIT, HEIGHT, 2, block_id(b"x"))
    commit = commit_from_votes(keys.valset, HEIGHT, 2, BID, votes)
    assert commit.signatures[2] == ABSENT and commit.signatures[3] == ABSENT
    assert verify_commit(CHAIN, keys.valset, BID, HEIGHT, commit) == 7


# --- evidence ---------------------------------------------------------------------------


def test_duplicate_vote_evidence(keys: Keys) -> None:
    a = keys.vote(1, VoteType.PREVOTE, 5, 0, block_id(b"a"))
    b = keys.vote(1, VoteType.PREVOTE, 5, 0, None)
    ev = DuplicateVoteEvidence.of(a, b)
    assert ev == DuplicateVoteEvidence.of(b, a)  # canonical order
    verify_duplicate_vote(CHAIN, keys.valset, ev)
    assert DuplicateVoteEvidence.from_obj(decode(encode(ev.to_obj()))) == ev
    cases = [
        DuplicateVoteEvidence(ev.vote_b, ev.vote_a),  # not canonical
        DuplicateVoteEvidence.of(
            a, keys.vote(1, VoteType.PREVOTE, 5, 0, block_id(b"a"), timestamp_ms=9)
        ),
        DuplicateVoteEvidence.of(a, keys.vote(2, VoteType.PREVOTE, 5, 0, None)),
        DuplicateVoteEvidence.of(a, keys.vote(1, VoteType.PREVOTE, 5, 1, None)),
        DuplicateVoteEvidence.of(a, keys.vote(1, VoteType.PRECOMMIT, 5, 0, None)),
        DuplicateVoteEvidence.of(a, replace(b, signature=bytes(64))),
        DuplicateVoteEvidence.of(a, keys.vote(1, VoteType.PREVOTE, 5, 0, None, chain_id="x")),
    ]
    for bad in cases:
        with pytest.raises(EvidenceError):
            verify_duplicate_vote(CHAIN, keys.valset, bad)


# --- message forms ----------------------------------------------------------------------


def _block(keys: Keys, chain_id: str = CHAIN) -> Block:
    return make_block(
        chain_id=chain_id,
        height=1,
        time_ms=1,
        last_block_id=None,
        last_commit=None,
        txs=[b"tx1", b"tx2"],
        evidence=[],
        validators=keys.valset,
        next_validators=keys.valset,
        app_hash=bytes(32),
        last_results_hash=EMPTY_HASH,
        proposer_address=keys.valset.validators[0].address,
    )


def test_plain_forms_round_trip(keys: Keys) -> None:
    block = _block(keys)
    commit = make_commit(keys, [0, 1, 2], nil=[3])
    ev = DuplicateVoteEvidence.of(
        keys.vote(1, VoteType.PREVOTE, 1, 0, BID), keys.vote(1, VoteType.PREVOTE, 1, 0, None)
    )
    full = replace(block, evidence=(ev,), last_commit=commit)
    for value, kind in [
        (block, Block),
        (full, Block),
        (block.header, Header),
        (commit, Commit),
        (keys.vote(0, VoteType.PRECOMMIT, 3, 1, None), Vote),
        (Proposal(3, 1, 0, BID, 77, b"s" * 64), Proposal),
    ]:
        assert kind.from_obj(decode(encode(value.to_obj()))) == value
    assert Block.decode(full.encode()) == full
    assert full.block_id() != block.block_id() or full.header == block.header


def test_malformed_plain_forms_are_rejected(keys: Keys) -> None:
    vote = keys.vote(0, VoteType.PREVOTE, 3, 1, BID).to_obj()
    for broken in [
        {k: v for k, v in vote.items() if k != "round"},
        {**vote, "round": -1},
        {**vote, "type": 9},
        {**vote, "block_id": b"short"},
        {**vote, "height": "3"},
        [],
    ]:
        with pytest.raises(MessageError):
            Vote.from_obj(broken)
    with pytest.raises(MessageError):
        Block.decode(b"\xc1")
    with pytest.raises(MessageError):
        CommitSig.from_obj([1, b"addr", 0, b""])  # absent must be empty


def test_sign_bytes_are_domain_separated(keys: Keys) -> None:
    vote = Vote(VoteType.PREVOTE, 3, 1, BID, 5, b"a" * 20, 0)
    assert vote.sign_bytes("a") != vote.sign_bytes("b")
    assert vote.sign_bytes("a") != replace(vote, type=VoteType.PRECOMMIT).sign_bytes("a")
    proposal = Proposal(3, 1, -1, BID, 5)
    assert proposal.sign_bytes("a") != vote.sign_bytes("a")
    # the header hash fixes the txs
    block = _block(keys)
    assert replace(block.header, data_hash=EMPTY_HASH).hash() != block.hash()
    assert isinstance(block.block_id(), BlockID)


def _quorum(keys: Keys, round_: int, bid: BlockID, who: tuple[int, ...] = (0, 1, 2)) -> Commit:
    votes = {i: keys.vote(i, VoteType.PRECOMMIT, 1, round_, bid) for i in who}
    return commit_from_votes(keys.valset, 1, round_, bid, votes)


def test_conflicting_commits_evidence(keys: Keys) -> None:
    a, b = block_id(b"a"), block_id(b"b")
    evidence = ConflictingCommits.of(_quorum(keys, 0, b), _quorum(keys, 0, a, (0, 1)))
    verify_conflicting_commits(CHAIN, keys.valset, evidence)
    assert evidence == ConflictingCommits.of(evidence.commit_b, evidence.commit_a)  # canonical
    assert ConflictingCommits.from_obj(decode(encode(evidence.to_obj()))) == evidence
    both = sorted(keys.valset.validators[i].address for i in (0, 1))
    assert evidence.double_signers() == both and evidence.height == 1
    across = ConflictingCommits.of(_quorum(keys, 0, a), _quorum(keys, 2, b))
    verify_conflicting_commits(CHAIN, keys.valset, across)
    assert across.double_signers() == []  # different rounds: no one double signed a round
    with pytest.raises(EvidenceError, match="same block"):
        verify_conflicting_commits(
            CHAIN, keys.valset, ConflictingCommits(_quorum(keys, 0, a), _quorum(keys, 1, a))
        )
    with pytest.raises(EvidenceError, match="canonical"):
        verify_conflicting_commits(
            CHAIN, keys.valset, ConflictingCommits(evidence.commit_b, evidence.commit_a)
        )
    other_height = replace(_quorum(keys, 0, b), height=2)
    with pytest.raises(EvidenceError, match="different heights"):
        verify_conflicting_commits(
            CHAIN, keys.valset, ConflictingCommits.of(evidence.commit_a, other_height)
        )
    weak = ConflictingCommits.of(_quorum(keys, 0, a), _quorum(keys, 0, b, (1, 2, 3)))  # 6 of 10
    with pytest.raises(EvidenceError, match="does not verify"):
        verify_conflicting_commits(CHAIN, keys.valset, weak)
    with pytest.raises(EvidenceError, match="does not verify"):
        verify_conflicting_commits("other-chain", keys.valset, evidence)
    with pytest.raises(MessageError):
        ConflictingCommits.from_obj({**evidence.to_obj(), "kind": "duplicate_vote"})
