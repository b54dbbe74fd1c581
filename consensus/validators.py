"""Validators, validator sets and CometBFT's proposer-priority algorithm (weighted round robin).

A validator set is immutable: every operation returns a new set. Validators are ordered by
voting power (descending), then address (ascending), as in CometBFT, so a validator's index is
fixed for all rounds of a height; that index is what votes and commit signatures refer to.

Proposer selection (CometBFT ``types/validator_set.go``): each increment adds every validator's
power to its priority, picks the highest priority (ties: the smaller address) and subtracts the
total power from the pick. Before a run of increments, priorities are rescaled so their spread
stays within 2 * total power and shifted so their average is zero. ``from_genesis`` performs one
increment (``NewValidatorSet``); the set of height h+1 is the set of height h after one more
increment (:meth:`ValidatorSet.advance`); the proposer of round r is that of
``set.increment(r)``. Integer arithmetic only, with Go's truncating division where Go divides.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from primitives.codec import encode
from primitives.crypto import address_of
from primitives.hashing import merkle_root

MAX_TOTAL_VOTING_POWER = (2**63 - 1) // 8
PRIORITY_WINDOW_SIZE_FACTOR = 2


class ValidatorSetError(ValueError):
    """An invalid validator set or validator update."""


def _go_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, as Go's ``/`` on int64."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@dataclass(frozen=True)
class Validator:
    address: bytes
    """20-byte address (:func:`primitives.crypto.address_of` of the public key)."""
    public_key: bytes
    """Ed25519 public key, 32 bytes."""
    voting_power: int
    proposer_priority: int = 0

    @classmethod
    def from_public_key(cls, public_key: bytes, voting_power: int) -> Validator:
        return cls(address_of(public_key), bytes(public_key), voting_power)

    def hash_bytes(self) -> bytes:
        """The Merkle leaf of this validator in ``validators_hash`` (priority excluded)."""
        return encode([self.public_key, self.voting_power])

    def to_obj(self) -> dict:
        return {
            "address": self.address,
            "pub_key": self.public_key,
            "power": self.voting_power,
            "priority": self.proposer_priority,
        }

    @classmethod
    def from_obj(cls, obj: object) -> Validator:
        if not isinstance(obj, dict):
            raise ValidatorSetError("validator must be a map")
        try:
            address, pub, power, prio = (
                obj["address"],
                obj["pub_key"],
                obj["power"],
                obj["priority"],
            )
        except KeyError as exc:
            raise ValidatorSetError(f"validator lacks field {exc}") from exc
        if not (isinstance(address, bytes) and isinstance(pub, bytes)):
            raise ValidatorSetError("validator address and pub_key must be bytes")
        if type(power) is not int or type(prio) is not int:
            raise ValidatorSetError("validator power and priority must be integers")
        return cls(address, pub, power, prio)


def _compare_key(v: Validator) -> tuple[int, bytes]:
    """Sort key for 'most priority': highest priority first, then the smaller address."""
    return (-v.proposer_priority, v.address)


@dataclass(frozen=True)
class ValidatorSet:
    validators: tuple[Validator, ...]
    """Sorted by voting power (descending), then address (ascending)."""
    proposer: Validator | None = None
    """The proposer chosen by the latest increment (round 0 of the set's height)."""
    total_power: int = field(default=0, compare=False)
    _index: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        total = sum(v.voting_power for v in self.validators)
        object.__setattr__(self, "total_power", total)
        object.__setattr__(self, "_index", {v.address: i for i, v in enumerate(self.validators)})

    def __hash__(self) -> int:
        return hash((self.validators, self.proposer))

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_genesis(cls, validators: Iterable[Validator]) -> ValidatorSet:
        """A new set as CometBFT's ``NewValidatorSet``: validated, sorted, incremented once."""
        vals = list(validators)
        if not vals:
            raise ValidatorSetError("a validator set needs at least one validator")
        _check_powers(vals)
        fresh = [replace(v, proposer_priority=0) for v in vals]
        return cls(_sorted(fresh)).increment(1)

    # --- queries ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.validators)

    def index_of(self, address: bytes) -> int:
        """Index of ``address`` in the set, or -1."""
        return self._index.get(address, -1)

    def get(self, address: bytes) -> Validator | None:
        i = self._index.get(address, -1)
        return self.validators[i] if i >= 0 else None

    def hash(self) -> bytes:
        """``validators_hash`` of a header: Merkle root of (public key, power) per validator."""
        return _valset_hash(self.validators)

    def two_thirds(self, power: int) -> bool:
        """+2/3: strictly more than two thirds of the total power."""
        return 3 * power > 2 * self.total_power

    def one_third(self, power: int) -> bool:
        """f+1: strictly more than one third of the total power (at least one correct)."""
        return 3 * power > self.total_power

    def proposer_for_round(self, round_: int) -> Validator:
        """The proposer of ``round_`` at this set's height."""
        return _proposer_for_round(self, round_)

    # --- priority algorithm -------------------------------------------------------------

    def increment(self, times: int) -> ValidatorSet:
        """CometBFT ``IncrementProposerPriority(times)`` on a copy."""
        if times <= 0:
            raise ValidatorSetError("increment needs a positive count")
        prios = [v.proposer_priority for v in self.validators]
        powers = [v.voting_power for v in self.validators]
        total = self.total_power
        prios = _rescale(prios, PRIORITY_WINDOW_SIZE_FACTOR * total)
        avg = sum(prios) // len(prios)  # big.Int Div: Euclidean, floor for a positive divisor
        prios = [p - avg for p in prios]
        addresses = [v.address for v in self.validators]
        chosen = 0
        for _ in range(times):
            prios = [p + w for p, w in zip(prios, powers)]
            chosen = min(range(len(prios)), key=lambda i: (-prios[i], addresses[i]))
            prios[chosen] -= total
        vals = tuple(replace(v, proposer_priority=p) for v, p in zip(self.validators, prios))
        return ValidatorSet(vals, vals[chosen])

    def advance(self) -> ValidatorSet:
        """The set for the next height when there are no updates."""
        return self.increment(1)

    def apply_updates(self, changes: Sequence[Validator]) -> ValidatorSet:
        """CometBFT ``UpdateWithChangeSet``: power 0 removes, otherwise add or re-weight.

        New validators start at priority -(1.125 * total power after updates) so a joining
        validator cannot propose at once. The result still needs :meth:`advance` for its height.
        """
        seen: set[bytes] = set()
        for change in changes:
            if change.address in seen:
                raise ValidatorSetError(f"duplicate update for {change.address.hex()}")
            seen.add(change.address)
        _check_powers([c for c in changes if c.voting_power != 0], allow_zero=False)
        current = {v.address: v for v in self.validators}
        removals = [c for c in changes if c.voting_power == 0]
        updates = [c for c in changes if c.voting_power > 0]
        for r in removals:
            if r.address not in current:
                raise ValidatorSetError(f"cannot remove unknown validator {r.address.hex()}")
        tvp_updates = self.total_power + sum(
            u.voting_power - (current[u.address].voting_power if u.address in current else 0)
            for u in updates
        )
        result = dict(current)
        for u in updates:
            if u.address in current:
                result[u.address] = replace(current[u.address], voting_power=u.voting_power)
            else:
                result[u.address] = replace(
                    u, proposer_priority=-(tvp_updates + (tvp_updates >> 3))
                )
        for r in removals:
            del result[r.address]
        if not result:
            raise ValidatorSetError("updates would remove every validator")
        vals = list(result.values())
        _check_powers(vals)
        total = sum(v.voting_power for v in vals)
        prios = _rescale([v.proposer_priority for v in vals], PRIORITY_WINDOW_SIZE_FACTOR * total)
        avg = sum(prios) // len(prios)
        vals = [replace(v, proposer_priority=p - avg) for v, p in zip(vals, prios)]
        return ValidatorSet(_sorted(vals), self.proposer)

    # --- encoding -----------------------------------------------------------------------

    def to_obj(self) -> dict:
        return {
            "validators": [v.to_obj() for v in self.validators],
            "proposer": self.proposer.address if self.proposer else None,
        }

    @classmethod
    def from_obj(cls, obj: object) -> ValidatorSet:
        if not isinstance(obj, dict) or not isinstance(obj.get("validators"), list):
            raise ValidatorSetError("validator set must be a map with a validators list")
        vals = tuple(Validator.from_obj(v) for v in obj["validators"])
        if not vals:
            raise ValidatorSetError("a validator set needs at least one validator")
        _check_powers(list(vals))
        if vals != _sorted(list(vals)):
            raise ValidatorSetError("validators are not in canonical order")
        proposer_address = obj.get("proposer")
        proposer = None
        if proposer_address is not None:
            proposer = next((v for v in vals if v.address == proposer_address), None)
            if proposer is None:
                raise ValidatorSetError("proposer is not in the validator set")
        return cls(vals, proposer)


def _sorted(vals: list[Validator]) -> tuple[Validator, ...]:
    return tuple(sorted(vals, key=lambda v: (-v.voting_power, v.address)))


def _check_powers(vals: Sequence[Validator], allow_zero: bool = False) -> None:
    addresses = set()
    for v in vals:
        if type(v.voting_power) is not int or v.voting_power < (0 if allow_zero else 1):
            raise ValidatorSetError(
                f"voting power must be a positive integer, got {v.voting_power!r}"
            )
        if v.address in addresses:
            raise ValidatorSetError(f"duplicate validator {v.address.hex()}")
        addresses.add(v.address)
    if sum(v.voting_power for v in vals) > MAX_TOTAL_VOTING_POWER:
        raise ValidatorSetError(f"total voting power exceeds {MAX_TOTAL_VOTING_POWER}")


def _rescale(prios: list[int], diff_max: int) -> list[int]:
    """CometBFT ``RescalePriorities``: keep max - min within ``diff_max``."""
    if diff_max <= 0:
        return prios
    diff = max(prios) - min(prios)
    if diff > diff_max:
        ratio = (diff + diff_max - 1) // diff_max
        return [_go_div(p, ratio) for p in prios]
    return prios


@functools.lru_cache(maxsize=4096)
def _valset_hash(validators: tuple[Validator, ...]) -> bytes:
    return merkle_root([v.hash_bytes() for v in validators])


@functools.lru_cache(maxsize=4096)
def _proposer_for_round(vs: ValidatorSet, round_: int) -> Validator:
    if round_ < 0:
        raise ValidatorSetError("round must be >= 0")
    if round_ == 0:
        if vs.proposer is None:
            return min(vs.validators, key=_compare_key)
        return vs.proposer
    chosen = vs.increment(round_).proposer
    if chosen is None:  # unreachable: an increment always chooses
        raise ValidatorSetError("no proposer")
    return chosen
