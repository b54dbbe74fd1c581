"""Proposer rotation against CometBFT's algorithm: its own test vector and hand-worked sets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from primitives.codec import decode, encode
from consensus.validators import Validator, ValidatorSet, ValidatorSetError


def val(name: str, power: int, priority: int = 0) -> Validator:
    return Validator(name.encode(), b"", power, priority)


def names(vs: ValidatorSet) -> list[str]:
    return [v.address.decode() for v in vs.validators]


def priorities(vs: ValidatorSet) -> dict[str, int]:
    return {v.address.decode(): v.proposer_priority for v in vs.validators}


def test_cometbft_proposer_selection_vector() -> None:
    """``TestProposerSelection1`` of cometbft/types/validator_set_test.go (99 heights)."""
    vs = ValidatorSet.from_genesis([val("foo", 1000), val("bar", 300), val("baz", 330)])
    seen = []
    for _ in range(99):
        seen.append(vs.proposer.address.decode())
        vs = vs.advance()
    expected = (
        "foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar "
        "foo foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar "
        "foo baz foo foo bar foo baz foo foo bar foo baz foo foo foo baz bar foo foo foo baz "
        "foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo "
        "foo bar foo baz foo foo bar foo baz foo foo bar foo baz foo foo"
    )
    assert " ".join(seen) == expected


def test_hand_worked_three_to_one() -> None:
    """x=3, y=1, total 4 (worked by hand):

    genesis: (0,0) +power (3,1) -> x, x-=4: (-1, 1)       proposer x
    next:    (2,2) tie -> smaller address x: (-2, 2)      proposer x
    next:    (1,3) -> y: (1,-1)                           proposer y
    next:    (4,0) -> x: (0,0)                            proposer x   (then it repeats)
    """
    vs = ValidatorSet.from_genesis([val("y", 1), val("x", 3)])
    assert names(vs) == ["x", "y"]  # by power, descending
    assert priorities(vs) == {"x": -1, "y": 1} and vs.proposer.address == b"x"
    steps = [
        ({"x": -2, "y": 2}, b"x"),
        ({"x": 1, "y": -1}, b"y"),
        ({"x": 0, "y": 0}, b"x"),
        ({"x": -1, "y": 1}, b"x"),
    ]
    for prios, proposer in steps:
        vs = vs.advance()
        assert priorities(vs) == prios
        assert vs.proposer.address == proposer


def test_rounds_continue_the_rotation() -> None:
    """Round r of a height = r more increments of the height's set (x=3, y=1 at genesis):
    round 1: (-1,1)+(3,1) = (2,2) -> x; round 2: then (-2,2)+(3,1) = (1,3) -> y."""
    vs = ValidatorSet.from_genesis([val("x", 3), val("y", 1)])
    assert vs.proposer_for_round(0).address == b"x"
    assert vs.proposer_for_round(1).address == b"x"
    assert vs.proposer_for_round(2).address == b"y"


def test_equal_power_round_robin_by_address() -> None:
    vs = ValidatorSet.from_genesis([val("c", 5), val("a", 5), val("b", 5)])
    seen = []
    for _ in range(6):
        seen.append(vs.proposer.address.decode())
        vs = vs.advance()
    assert seen == ["a", "b", "c", "a", "b", "c"]


def test_rescale_truncates_toward_zero_like_go() -> None:
    """x=101, y=-99 (power 3 and 1): diff 200 > 2*4 -> ratio ceil(200/8) = 25;
    Go division: 101/25 = 4, -99/25 = -3 (not -4); avg (4-3)//2 = 0;
    +power (7, -2) -> x: (3, -2)."""
    vs = ValidatorSet((val("x", 3, 101), val("y", 1, -99)))
    nxt = vs.increment(1)
    assert priorities(nxt) == {"x": 3, "y": -2}
    assert nxt.proposer.address == b"x"


def test_average_shift_floors_like_big_int() -> None:
    """x=3, y=1 at genesis (-1, 1); add z=5: total after updates 9, so z starts at
    -(9 + 9>>3) = -10. Sum -10, avg floor(-10/3) = -4 (Go big.Int Div, not -3):
    x=3, y=5, z=-6. Next height: +power: z=-1, x=6, y=6 -> x (tie, smaller address): -3."""
    vs = ValidatorSet.from_genesis([val("x", 3), val("y", 1)])
    updated = vs.apply_updates([val("z", 5)])
    assert names(updated) == ["z", "x", "y"]
    assert priorities(updated) == {"x": 3, "y": 5, "z": -6}
    nxt = updated.advance()
    assert nxt.proposer.address == b"x"
    assert priorities(nxt) == {"x": -3, "y": 6, "z": -1}


def test_updates_remove_and_reweight() -> None:
    vs = ValidatorSet.from_genesis([val("x", 3), val("y", 1), val("z", 2)])
    updated = vs.apply_updates([val("y", 0), val("x", 7)])
    assert names(updated) == ["x", "z"]
    assert updated.total_power == 9
    with pytest.raises(ValidatorSetError):
        vs.apply_updates([val("q", 0)])  # removing an unknown validator
    with pytest.raises(ValidatorSetError):
        vs.apply_updates([val("x", 0), val("y", 0), val("z", 0)])
    with pytest.raises(ValidatorSetError):
        vs.apply_updates([val("x", 2), val("x", 3)])


def test_invalid_sets_are_refused() -> None:
    with pytest.raises(ValidatorSetError):
        ValidatorSet.from_genesis([])
    with pytest.raises(ValidatorSetError):
        ValidatorSet.from_genesis([val("x", 0)])
    with pytest.raises(ValidatorSetError):
        ValidatorSet.from_genesis([val("x", 1), val("x", 2)])


def test_thresholds_are_strict() -> None:
    vs = ValidatorSet.from_genesis([val("a", 1), val("b", 1), val("c", 1)])
    assert not vs.two_thirds(2)  # exactly 2/3 is not enough
    assert vs.two_thirds(3)
    assert not vs.one_third(1) and vs.one_third(2)


def test_plain_form_round_trip_and_hash() -> None:
    vs = ValidatorSet.from_genesis([val("x", 3), val("y", 1)]).advance()
    again = ValidatorSet.from_obj(decode(encode(vs.to_obj())))
    assert again == vs and again.hash() == vs.hash()
    assert vs.hash() != ValidatorSet.from_genesis([val("x", 3), val("y", 2)]).hash()
    # priorities do not enter the hash: every height of a constant set has one hash
    assert vs.hash() == vs.advance().hash()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=8), st.integers(1, 40))
def test_rotation_is_proportional_to_power(powers: list[int], rounds: int) -> None:
    """Over one full cycle of total-power heights, each validator proposes exactly its power
    times, and priorities always sum to about zero (bounded window)."""
    vals = [val(f"v{i}", p) for i, p in enumerate(powers)]
    vs = ValidatorSet.from_genesis(vals)
    total = vs.total_power
    counts: dict[bytes, int] = {}
    for _ in range(total):
        counts[vs.proposer.address] = counts.get(vs.proposer.address, 0) + 1
        vs = vs.advance()
        assert (
            max(v.proposer_priority for v in vs.validators)
            - min(v.proposer_priority for v in vs.validators)
            <= 3 * total
        )
    assert counts == {v.address: v.voting_power for v in vals}
    assert vs.index_of(vs.proposer_for_round(rounds).address) >= 0
