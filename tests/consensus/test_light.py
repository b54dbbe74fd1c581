"""consensus/light.py: sequential and skipping verification, bisection, attack detection."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consensus.commit import commit_from_votes
from consensus.light import (
    FaultyWitnessError,
    InvalidHeaderError,
    LightBlock,
    NewValSetCantBeTrustedError,
    OldHeaderExpiredError,
    Options,
    detect_attack,
    verify_adjacent,
    verify_non_adjacent,
    verify_sequential,
    verify_skipping,
)
from consensus.types import BlockID, CommitFlag, CommitSig, Header, Vote, VoteType
from consensus.validators import Validator, ValidatorSet
from primitives.crypto import PrivateKey, Signer
from primitives.hashing import EMPTY_HASH, sha256

CHAIN = "light-chain"
SIGNERS = [Signer(PrivateKey(sha256(b"light-%d" % i))) for i in range(10)]
DAY_MS = 86_400_000
OPTIONS = Options(trusting_period_ms=14 * DAY_MS)
T0 = 1_700_000_000_000


def vset(*members: tuple[int, int]) -> ValidatorSet:
    """A set from (signer index, power) pairs."""
    return ValidatorSet.from_genesis(
        [Validator.from_public_key(SIGNERS[i].public_key, p) for i, p in members])


def sign(header: Header, validators: ValidatorSet, who: set[int] | None = None):
    """The commit of ``header`` with precommits from ``who`` (signer indices; None: all)."""
    block_id = header.block_id()
    votes = {}
    for index, v in enumerate(validators.validators):
        signer = next(s for s in SIGNERS if s.address == v.address)
        if who is not None and SIGNERS.index(signer) not in who:
            continue
        vote = Vote(VoteType.PRECOMMIT, header.height, 0, block_id, header.time_ms, v.address,
                    index)
        votes[index] = replace(vote, signature=signer.sign(vote.sign_bytes(CHAIN)))
    return commit_from_votes(validators, header.height, 0, block_id, votes)


def build(sets: dict[int, ValidatorSet], top: int, *, fork_at: int | None = None,
          base: dict[int, LightBlock] | None = None, signers: set[int] | None = None,
          salt: bytes = b"") -> dict[int, LightBlock]:
    """Light blocks 1..top; ``sets[h]`` is the set of height h (and of later heights until the
    next entry). From ``fork_at`` on, ``salt`` changes the app hash (a different chain)."""
    def set_at(h: int) -> ValidatorSet:
        return sets[max(k for k in sets if k <= h)]

    chain: dict[int, LightBlock] = {}
    last: BlockID | None = None
    for h in range(1, top + 1):
        if base is not None and fork_at is not None and h < fork_at:
            chain[h] = base[h]
            last = base[h].header.block_id()
            continue
        forked = fork_at is not None and h >= fork_at
        header = Header(
            chain_id=CHAIN, height=h, time_ms=T0 + 1000 * h + (7 if forked else 0),
            last_block_id=last, last_commit_hash=EMPTY_HASH, data_hash=EMPTY_HASH,
            validators_hash=set_at(h).hash(), next_validators_hash=set_at(h + 1).hash(),
            app_hash=sha256(b"app %d" % h + (salt if forked else b"")),
            last_results_hash=EMPTY_HASH, evidence_hash=EMPTY_HASH,
            proposer_address=set_at(h).validators[0].address)
        chain[h] = LightBlock(header, sign(header, set_at(h), signers), set_at(h))
        last = header.block_id()
    return chain


A = vset((0, 4), (1, 3), (2, 2), (3, 1))
A2 = vset((0, 4), (1, 3), (2, 2), (4, 2))          # 3 leaves, 4 joins
B = vset((5, 1), (6, 1), (7, 1), (8, 1))           # disjoint from A
NOW = T0 + 100_000


def test_sequential_verification_follows_validator_set_changes() -> None:
    chain = build({1: A, 4: A2, 7: A}, 10)
    trace = verify_sequential(CHAIN, chain[1], 10, chain.__getitem__, NOW, OPTIONS)
    assert [b.height for b in trace] == list(range(2, 11))


def test_skipping_verifies_in_one_step_when_a_third_of_the_trusted_set_signed() -> None:
    chain = build({1: A, 4: A2}, 10)
    fetched: list[int] = []

    def fetch(h: int) -> LightBlock:
        fetched.append(h)
        return chain[h]

    trace = verify_skipping(CHAIN, chain[1], 10, fetch, NOW, OPTIONS)
    assert [b.height for b in trace] == [10] and fetched == [10]


def test_bisection_crosses_a_complete_turnover_of_the_validator_set() -> None:
    chain = build({1: A, 6: B}, 10)
    with pytest.raises(NewValSetCantBeTrustedError):
        verify_non_adjacent(CHAIN, chain[1], chain[10], NOW, OPTIONS)
    trace = verify_skipping(CHAIN, chain[1], 10, chain.__getitem__, NOW, OPTIONS)
    assert [b.height for b in trace] == [5, 6, 7, 10]


def test_a_forged_commit_is_an_invalid_header() -> None:
    chain = build({1: A}, 3)
    block = chain[2]
    sigs = list(block.commit.signatures)
    sigs[0] = replace(sigs[0], signature=bytes(64))
    forged = replace(block, commit=replace(block.commit, signatures=tuple(sigs)))
    with pytest.raises(InvalidHeaderError, match="does not verify"):
        verify_adjacent(CHAIN, chain[1], forged, NOW, OPTIONS)


def test_a_header_signed_by_an_outsider_set_is_an_invalid_header() -> None:
    chain = build({1: A}, 3)
    outsiders = build({1: B}, 3)
    with pytest.raises(InvalidHeaderError, match="next_validators_hash"):
        verify_adjacent(CHAIN, chain[1], outsiders[2], NOW, OPTIONS)


def test_too_little_overlap_cannot_be_trusted() -> None:
    # exactly one third of the trusted power (validator 2 of 2+2+2) signed: not more than 1/3
    trusted_set = vset((0, 2), (1, 2), (2, 2))
    chain = build({1: trusted_set, 3: vset((2, 1), (5, 1), (6, 1), (7, 1))}, 5)
    with pytest.raises(NewValSetCantBeTrustedError, match="2 of the trusted 6"):
        verify_non_adjacent(CHAIN, chain[1], chain[5], NOW, OPTIONS)


def test_less_than_two_thirds_of_the_new_set_is_an_invalid_header() -> None:
    chain = build({1: A}, 5, signers={0, 1})  # 7 of 10 signed height 5's commit...
    weak = build({1: A}, 5, signers={0, 2})   # ...but only 6 of 10 here
    verify_non_adjacent(CHAIN, chain[1], chain[5], NOW, OPTIONS)
    with pytest.raises(InvalidHeaderError, match="more than 2/3"):
        verify_non_adjacent(CHAIN, chain[1], weak[5], NOW, OPTIONS)


def test_an_expired_trusted_header_is_refused() -> None:
    chain = build({1: A}, 5)
    expiry = chain[1].time_ms + OPTIONS.trusting_period_ms
    verify_non_adjacent(CHAIN, chain[1], chain[5], expiry - 1, OPTIONS)
    with pytest.raises(OldHeaderExpiredError):
        verify_non_adjacent(CHAIN, chain[1], chain[5], expiry, OPTIONS)
    with pytest.raises(OldHeaderExpiredError):
        verify_skipping(CHAIN, chain[1], 5, chain.__getitem__, expiry, OPTIONS)


def test_headers_from_the_future_or_not_moving_forward_are_invalid() -> None:
    chain = build({1: A}, 5)
    with pytest.raises(InvalidHeaderError, match="future"):
        verify_adjacent(CHAIN, chain[1], chain[2], chain[2].time_ms - 10_000, OPTIONS)
    with pytest.raises(InvalidHeaderError, match="not above"):
        verify_skipping(CHAIN, chain[3], chain[2], chain.__getitem__, NOW, OPTIONS)
    with pytest.raises(InvalidHeaderError, match="chain"):
        other = replace(chain[3].header, chain_id="other")
        verify_non_adjacent(CHAIN, chain[1], replace(chain[3], header=other), NOW, OPTIONS)


def test_a_validator_set_that_does_not_match_the_header_is_invalid() -> None:
    chain = build({1: A}, 5)
    with pytest.raises(InvalidHeaderError, match="validators_hash"):
        verify_non_adjacent(CHAIN, chain[1], replace(chain[5], validators=A2), NOW, OPTIONS)


def test_light_blocks_round_trip_their_plain_form() -> None:
    block = build({1: A}, 2)[2]
    assert LightBlock.from_obj(block.to_obj()) == block
    with pytest.raises(InvalidHeaderError):
        LightBlock.from_obj({"header": {}})


def test_an_honest_witness_raises_no_alarm() -> None:
    chain = build({1: A, 4: A2}, 10)
    trace = [chain[1], *verify_skipping(CHAIN, chain[1], 10, chain.__getitem__, NOW, OPTIONS)]
    assert detect_attack(CHAIN, trace, chain.__getitem__, NOW, OPTIONS) is None


def test_an_equivocation_by_the_whole_set_is_evidence_naming_the_double_signers() -> None:
    primary = build({1: A}, 10)
    fork = build({1: A}, 10, fork_at=8, base=primary, signers={0, 1, 2})
    # a fork that changes only what consensus decides (time), not what state gives
    trace = [primary[1], *verify_sequential(CHAIN, primary[1], 10, primary.__getitem__, NOW,
                                            OPTIONS)]
    evidence = detect_attack(CHAIN, trace, fork.__getitem__, NOW, OPTIONS)
    assert evidence is not None and evidence.kind == "equivocation"
    assert evidence.common_height == 7
    assert {v.address for v in evidence.byzantine_validators} == {
        SIGNERS[i].address for i in (0, 1, 2)}


def test_a_lunatic_header_from_a_third_of_the_set_is_evidence_against_them() -> None:
    primary = build({1: A}, 10)
    rogue = vset((0, 4), (1, 3))
    fork = build({1: A, 8: rogue}, 10, fork_at=8, base=primary, salt=b"stolen")
    trace = [primary[1], *verify_skipping(CHAIN, primary[1], 10, primary.__getitem__, NOW,
                                          OPTIONS)]
    evidence = detect_attack(CHAIN, trace, fork.__getitem__, NOW, OPTIONS)
    assert evidence is not None and evidence.kind == "lunatic"
    assert {v.address for v in evidence.byzantine_validators} == {
        SIGNERS[0].address, SIGNERS[1].address}
    assert evidence.common_height == 1


def test_a_witness_with_an_unsigned_header_is_faulty() -> None:
    primary = build({1: A}, 10)
    liar = build({1: A, 8: B}, 10, fork_at=8, base=primary, salt=b"x")
    trace = [primary[1], *verify_skipping(CHAIN, primary[1], 10, primary.__getitem__, NOW,
                                          OPTIONS)]
    with pytest.raises(FaultyWitnessError):
        detect_attack(CHAIN, trace, liar.__getitem__, NOW, OPTIONS)


def test_commit_sig_absent_slots_do_not_count() -> None:
    chain = build({1: A}, 3)
    sigs = tuple(CommitSig(CommitFlag.ABSENT) if i else s
                 for i, s in enumerate(chain[3].commit.signatures))
    with pytest.raises(InvalidHeaderError):
        verify_non_adjacent(CHAIN, chain[1],
                            replace(chain[3], commit=replace(chain[3].commit, signatures=sigs)),
                            NOW, OPTIONS)
