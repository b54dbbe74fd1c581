"""Consensus-level checks of a proposed block, one rule at a time."""

from __future__ import annotations

from dataclasses import replace

import pytest
from consensus_helpers import CHAIN, Keys
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.blocks import (
    BlockLimits,
    InvalidBlockError,
    check_block,
    check_block_integrity,
    make_block,
)
from consensus.commit import commit_from_votes
from primitives.hashing import EMPTY_HASH
from consensus.types import Block, BlockID, Commit, VoteType
from consensus.voteset import VoteSet, add_vote

APP = b"\x07" * 32


def block_at(
    keys: Keys, height: int, last: Block | None, commit: Commit | None, **changes
) -> Block:
    fields = {
        "chain_id": CHAIN,
        "height": height,
        "time_ms": 100 * height,
        "last_block_id": last.block_id() if last else None,
        "last_commit": commit,
        "txs": [b"tx-%d" % height],
        "evidence": [],
        "validators": keys.valset,
        "next_validators": keys.valset,
        "app_hash": APP,
        "last_results_hash": EMPTY_HASH,
        "proposer_address": keys.valset.validators[0].address,
    }
    fields.update(changes)
    return make_block(**fields)


def check(
    keys: Keys, block: Block, height: int, last: Block | None, limits: BlockLimits | None = None
) -> None:
    check_block(
        block,
        chain_id=CHAIN,
        height=height,
        validators=keys.valset,
        last_validators=keys.valset if last else None,
        last_block_id=last.block_id() if last else None,
        last_block_time_ms=last.header.time_ms if last else 0,
        app_hash=APP,
        limits=limits or BlockLimits(),
    )


def test_a_chain_of_two_blocks_passes_and_each_rule_bites(keys: Keys) -> None:
    first = block_at(keys, 1, None, None)
    check(keys, first, 1, None)
    votes = {i: keys.vote(i, VoteType.PRECOMMIT, 1, 0, first.block_id()) for i in (0, 1, 2)}
    commit = commit_from_votes(keys.valset, 1, 0, first.block_id(), votes)
    second = block_at(keys, 2, first, commit)
    check(keys, second, 2, first)
    weak = commit_from_votes(keys.valset, 1, 0, first.block_id(), {i: votes[i] for i in (2,)})
    bad_cases = {
        "chain id": block_at(keys, 2, first, commit, chain_id="other"),
        "height": block_at(keys, 3, first, commit),
        "last_block_id": replace(
            second, header=replace(second.header, last_block_id=BlockID(EMPTY_HASH))
        ),
        "time": block_at(keys, 2, first, commit, time_ms=100),
        "validators_hash": block_at(
            keys,
            2,
            first,
            commit,
            validators=keys.valset.apply_updates(
                [replace(keys.valset.validators[3], voting_power=5)]
            ),
        ),
        "app_hash": block_at(keys, 2, first, commit, app_hash=b"\x00" * 32),
        "proposer": block_at(keys, 2, first, commit, proposer_address=b"\x01" * 20),
        "data_hash": replace(second, txs=(b"other",)),
        "evidence_hash": replace(
            second, evidence=(), header=replace(second.header, evidence_hash=b"\x02" * 32)
        ),
        "last commit": block_at(keys, 2, first, weak),
        "no last commit": block_at(keys, 2, first, None),
    }
    for name, bad in bad_cases.items():
        with pytest.raises(InvalidBlockError):
            check(keys, bad, 2, first)
        assert name  # the case that did not raise is named in the traceback
    with pytest.raises(InvalidBlockError, match="txs exceed"):
        check(keys, second, 2, first, BlockLimits(max_txs=0))
    with pytest.raises(InvalidBlockError, match="bytes"):
        check(keys, second, 2, first, BlockLimits(max_bytes=100))
    with pytest.raises(InvalidBlockError):
        check_block_integrity(replace(second, last_commit=weak))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), max_size=20))
def test_vote_set_tallies(keys: Keys, script: list[tuple[int, int]]) -> None:
    """Each (validator, block id) counts once; 'any' power counts each validator once."""
    ids = [BlockID(bytes([i]) * 32) for i in range(2)] + [None]
    vs = VoteSet(1, 0, VoteType.PREVOTE)
    for who, which in script:
        vote = keys.vote(who, VoteType.PREVOTE, 1, 0, ids[which])
        vs, _, _ = add_vote(vs, vote, keys.valset.validators[who].voting_power)
    pairs = set(script)
    for which, bid in enumerate(ids):
        expected = sum(keys.valset.validators[w].voting_power for w, x in pairs if x == which)
        assert vs.power_for(bid) == expected
    assert vs.power == sum(keys.valset.validators[w].voting_power for w in {w for w, _ in script})
