"""Light-client verification (pure): trust a header at height h from a header already trusted.

CometBFT's rules (``light/verifier.go``, ``light/client.go``, ``light/detector.go``):

- A :class:`LightBlock` is a signed header (header + commit) with the validator set of its
  height; :meth:`LightBlock.validate_basic` checks the three agree.
- **Adjacent** (h = trusted + 1, :func:`verify_adjacent`): the new header's ``validators_hash``
  must be the trusted header's ``next_validators_hash``, and +2/3 of that set's power must sign.
- **Non-adjacent** (:func:`verify_non_adjacent`, "skipping"): more than the trust level (1/3
  by default) of the *trusted* set's power must have signed the new header, found by address
  (at least one correct validator vouches for it), and +2/3 of the new set's own power too.
- Both: the trusted header is younger than the trusting period (``now - time < period``), the
  new header is higher, later, and not more than ``max_clock_drift_ms`` in the future.
- **Bisection** (:func:`verify_skipping`): when too little of the trusted set signed the
  target, verify a header half-way first, and so on (CometBFT's ``verifySkipping``).
- **Detection** (:func:`detect_attack`): a witness's header for a height the primary proved,
  with another hash, is verified from the common trusted block; if it verifies there was an
  attack, and :class:`LightClientAttackEvidence` names the validators that signed both
  (equivocation) or signed the conflicting header from the common set (lunatic); if not, the
  witness is lying (:class:`FaultyWitnessError`).

No clock, no I/O: ``now_ms`` is an argument, and headers the bisection needs come from a
``fetch(height) -> LightBlock`` callable the shell provides (RPC in ``node/light_client.py``).

Raises (all :class:`LightClientError`): :class:`OldHeaderExpiredError` (CometBFT's
``ErrOldHeaderExpired``), :class:`NewValSetCantBeTrustedError` (``ErrNewValSetCantBeTrusted``),
:class:`InvalidHeaderError` (``ErrInvalidHeader``), :class:`FaultyWitnessError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from consensus.commit import CommitError, Verifier, verify_commit
from consensus.types import Commit, CommitFlag, Header, MessageError
from consensus.validators import Validator, ValidatorSet, ValidatorSetError
from primitives.crypto import verify

DEFAULT_TRUST_LEVEL = (1, 3)
"""Numerator, denominator: strictly more than this share of the trusted power must sign."""
DEFAULT_MAX_CLOCK_DRIFT_MS = 10_000
MAX_BISECTION_STEPS = 64
"""A bisection needs about log2(distance) pivots per validator-set turnover; a source that
keeps the client bisecting past this is refused."""


class LightClientError(ValueError):
    """A header the light client cannot trust (the subclass says why)."""


class OldHeaderExpiredError(LightClientError):
    """The trusted header is older than the trusting period: re-initialise from a fresh hash."""


class NewValSetCantBeTrustedError(LightClientError):
    """Too little of the trusted set's power signed the new header (bisect)."""


class InvalidHeaderError(LightClientError):
    """The new header or its commit is wrong: it must not be trusted, whatever else holds."""


class FaultyWitnessError(LightClientError):
    """A witness answered with a header that does not verify from the common trusted block."""


Fetch = Callable[[int], "LightBlock"]


@dataclass(frozen=True)
class LightBlock:
    """A header, the commit that signs it, and the validator set of its height."""

    header: Header
    commit: Commit
    validators: ValidatorSet

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def time_ms(self) -> int:
        return self.header.time_ms

    def hash(self) -> bytes:
        return self.header.hash()

    def validate_basic(self, chain_id: str) -> None:
        """The parts agree with each other (signatures are checked by the verifiers)."""
        h = self.header
        if h.chain_id != chain_id:
            raise InvalidHeaderError(f"header is for chain {h.chain_id!r}, expected {chain_id!r}")
        if self.commit.height != h.height:
            raise InvalidHeaderError(
                f"commit is for height {self.commit.height}, header is {h.height}")
        if self.commit.block_id != h.block_id():
            raise InvalidHeaderError("commit signs another block than the header")
        if h.validators_hash != self.validators.hash():
            raise InvalidHeaderError(
                f"validator set does not match validators_hash of height {h.height}")

    def to_obj(self) -> dict[str, Any]:
        return {"header": self.header.to_obj(), "commit": self.commit.to_obj(),
                "validators": self.validators.to_obj()}

    @classmethod
    def from_obj(cls, obj: Any) -> LightBlock:
        if not isinstance(obj, dict):
            raise InvalidHeaderError("a light block must be a map")
        try:
            return cls(Header.from_obj(obj.get("header")), Commit.from_obj(obj.get("commit")),
                       ValidatorSet.from_obj(obj.get("validators")))
        except (MessageError, ValidatorSetError) as exc:
            raise InvalidHeaderError(f"malformed light block: {exc}") from exc


@dataclass(frozen=True)
class Options:
    """What the light client's operator decides (CometBFT's TrustOptions and verifier args)."""

    trusting_period_ms: int
    trust_level: tuple[int, int] = DEFAULT_TRUST_LEVEL
    max_clock_drift_ms: int = DEFAULT_MAX_CLOCK_DRIFT_MS

    def __post_init__(self) -> None:
        num, den = self.trust_level
        # CometBFT ValidateTrustLevel: within [1/3, 1]
        if not (den > 0 and 3 * num >= den and num <= den):
            raise ValueError(f"trust level {num}/{den} must be within [1/3, 1]")
        if self.trusting_period_ms <= 0:
            raise ValueError("trusting period must be positive")


def header_expired(header: Header, trusting_period_ms: int, now_ms: int) -> bool:
    """CometBFT ``HeaderExpired``: the header's time plus the period is not after now."""
    return header.time_ms + trusting_period_ms <= now_ms


# --- the checks of one step ------------------------------------------------------------------


def _check_new_header(
    chain_id: str, trusted: LightBlock, untrusted: LightBlock, now_ms: int, options: Options
) -> None:
    """CometBFT ``verifyNewHeaderAndVals``."""
    untrusted.validate_basic(chain_id)
    if untrusted.height <= trusted.height:
        raise InvalidHeaderError(
            f"new header height {untrusted.height} is not above the trusted {trusted.height}")
    if untrusted.time_ms <= trusted.time_ms:
        raise InvalidHeaderError(
            f"new header time {untrusted.time_ms} is not after the trusted {trusted.time_ms}")
    if untrusted.time_ms >= now_ms + options.max_clock_drift_ms:
        raise InvalidHeaderError(
            f"new header time {untrusted.time_ms} is from the future (now {now_ms}, "
            f"drift {options.max_clock_drift_ms} ms)")


def _check_not_expired(trusted: LightBlock, now_ms: int, options: Options) -> None:
    if header_expired(trusted.header, options.trusting_period_ms, now_ms):
        raise OldHeaderExpiredError(
            f"trusted header {trusted.height} (time {trusted.time_ms}) expired at "
            f"{trusted.time_ms + options.trusting_period_ms}, now {now_ms}")


def _check_own_commit(chain_id: str, untrusted: LightBlock, verifier: Verifier) -> None:
    """+2/3 of the new header's own set signed it (CometBFT ``VerifyCommitLight``)."""
    try:
        verify_commit(chain_id, untrusted.validators, untrusted.header.block_id(),
                      untrusted.height, untrusted.commit, verifier)
    except CommitError as exc:
        raise InvalidHeaderError(f"commit of height {untrusted.height}: {exc}") from exc


def verify_commit_trusting(
    chain_id: str,
    trusted_validators: ValidatorSet,
    commit: Commit,
    trust_level: tuple[int, int],
    verifier: Verifier = verify,
) -> int:
    """CometBFT ``VerifyCommitLightTrusting``: the power of ``trusted_validators`` that signed.

    Signers are matched by address (the commit is indexed by the new set). Raises
    :class:`NewValSetCantBeTrustedError` unless strictly more than ``trust_level`` of the
    trusted total signed, :class:`InvalidHeaderError` on a bad signature or double signer.
    """
    num, den = trust_level
    seen: set[bytes] = set()
    power = 0
    for index, sig in enumerate(commit.signatures):
        if sig.flag != CommitFlag.COMMIT:
            continue
        validator = trusted_validators.get(sig.validator_address)
        if validator is None:
            continue
        if sig.validator_address in seen:
            raise InvalidHeaderError(f"validator {sig.validator_address.hex()} signs twice")
        seen.add(sig.validator_address)
        vote = commit.vote_of(index)
        if not verifier(validator.public_key, vote.sign_bytes(chain_id), sig.signature):
            raise InvalidHeaderError(
                f"signature of trusted validator {sig.validator_address.hex()} does not verify")
        power += validator.voting_power
    if power * den <= num * trusted_validators.total_power:
        raise NewValSetCantBeTrustedError(
            f"{power} of the trusted {trusted_validators.total_power} power signed; more than "
            f"{num}/{den} is needed")
    return power


def verify_adjacent(
    chain_id: str, trusted: LightBlock, untrusted: LightBlock, now_ms: int, options: Options,
    verifier: Verifier = verify,
) -> None:
    """Trust ``untrusted`` at ``trusted.height + 1`` (CometBFT ``VerifyAdjacent``)."""
    if untrusted.height != trusted.height + 1:
        raise InvalidHeaderError("headers must be adjacent in height")
    _check_not_expired(trusted, now_ms, options)
    _check_new_header(chain_id, trusted, untrusted, now_ms, options)
    if untrusted.header.validators_hash != trusted.header.next_validators_hash:
        raise InvalidHeaderError(
            f"validators_hash of {untrusted.height} is not the next_validators_hash of "
            f"{trusted.height}")
    _check_own_commit(chain_id, untrusted, verifier)


def verify_non_adjacent(
    chain_id: str, trusted: LightBlock, untrusted: LightBlock, now_ms: int, options: Options,
    verifier: Verifier = verify,
) -> None:
    """Trust ``untrusted`` more than one height above ``trusted`` (``VerifyNonAdjacent``)."""
    if untrusted.height == trusted.height + 1:
        raise InvalidHeaderError("headers must be non-adjacent in height")
    _check_not_expired(trusted, now_ms, options)
    _check_new_header(chain_id, trusted, untrusted, now_ms, options)
    verify_commit_trusting(chain_id, trusted.validators, untrusted.commit,
                           options.trust_level, verifier)
    _check_own_commit(chain_id, untrusted, verifier)


def verify_step(
    chain_id: str, trusted: LightBlock, untrusted: LightBlock, now_ms: int, options: Options,
    verifier: Verifier = verify,
) -> None:
    """Adjacent or non-adjacent verification, whichever the heights call for."""
    step = verify_adjacent if untrusted.height == trusted.height + 1 else verify_non_adjacent
    step(chain_id, trusted, untrusted, now_ms, options, verifier)


# --- from a trusted block to a target height --------------------------------------------------


def verify_sequential(
    chain_id: str, trusted: LightBlock, target: int, fetch: Fetch, now_ms: int,
    options: Options, verifier: Verifier = verify,
) -> list[LightBlock]:
    """Verify every header from ``trusted.height + 1`` to ``target``; return them in order."""
    trace: list[LightBlock] = []
    current = trusted
    for height in range(trusted.height + 1, target + 1):
        block = fetch(height)
        if block.height != height:
            raise InvalidHeaderError(f"asked for height {height}, got {block.height}")
        verify_adjacent(chain_id, current, block, now_ms, options, verifier)
        trace.append(block)
        current = block
    return trace


def verify_skipping(
    chain_id: str, trusted: LightBlock, target: LightBlock | int, fetch: Fetch, now_ms: int,
    options: Options, verifier: Verifier = verify,
) -> list[LightBlock]:
    """Bisection (CometBFT ``verifySkipping``): the verified blocks, ending with the target.

    Tries the target from the latest verified block; while too little of that block's set
    signed, inserts a pivot half-way and tries it first. Any other failure is final.
    """
    wanted = fetch(target) if isinstance(target, int) else target
    if wanted.height <= trusted.height:
        raise InvalidHeaderError(
            f"target height {wanted.height} is not above the trusted {trusted.height}")
    verified = trusted
    pending = [wanted]  # pending[-1] is the next to try; pending[0] the target
    trace: list[LightBlock] = []
    steps = 0
    while pending:
        candidate = pending[-1]
        try:
            verify_step(chain_id, verified, candidate, now_ms, options, verifier)
        except NewValSetCantBeTrustedError:
            steps += 1
            if steps > MAX_BISECTION_STEPS:
                raise
            pivot = verified.height + (candidate.height - verified.height) // 2
            if pivot <= verified.height:  # unreachable: adjacent steps never raise this
                raise
            block = fetch(pivot)
            if block.height != pivot:
                raise InvalidHeaderError(f"asked for height {pivot}, got {block.height}")
            pending.append(block)
            continue
        verified = pending.pop()
        trace.append(verified)
    return trace


# --- detecting an attack ----------------------------------------------------------------------


@dataclass(frozen=True)
class LightClientAttackEvidence:
    """A header that conflicts with one the primary proved, both signed (CometBFT's
    ``LightClientAttackEvidence``): the conflicting block, the last height both sources agree
    on, and the validators who signed what they must not have."""

    conflicting_block: LightBlock
    common_height: int
    byzantine_validators: tuple[Validator, ...]
    total_voting_power: int
    timestamp_ms: int
    kind: str
    """``equivocation`` (the set signed two headers that agree on everything taken from state)
    or ``lunatic`` (validators of the common set signed a header with invented state)."""

    def to_obj(self) -> dict[str, Any]:
        return {"conflicting_block": self.conflicting_block.to_obj(),
                "common_height": self.common_height,
                "byzantine_validators": [v.to_obj() for v in self.byzantine_validators],
                "total_voting_power": self.total_voting_power,
                "timestamp_ms": self.timestamp_ms, "kind": self.kind}


def _state_fields(header: Header) -> tuple[bytes, ...]:
    """What a header takes from the state both sources shared (CometBFT
    ``ConflictingHeaderIsInvalid``): when one differs, the conflicting header is invented."""
    return (header.validators_hash, header.next_validators_hash, header.app_hash,
            header.last_results_hash)


def _signers(commit: Commit) -> set[bytes]:
    return {s.validator_address for s in commit.signatures if s.flag == CommitFlag.COMMIT}


def detect_attack(
    chain_id: str,
    primary_trace: Sequence[LightBlock],
    witness_fetch: Fetch,
    now_ms: int,
    options: Options,
    verifier: Verifier = verify,
) -> LightClientAttackEvidence | None:
    """Compare the primary's verified trace (trusted block first, target last) with a witness.

    Returns None when the witness has the same target header. Otherwise the witness's header
    is verified from the latest block of the trace it agrees with (CometBFT ``examineConflicting
    HeaderAgainstTrace``); if it verifies, the evidence of the attack is returned, else
    :class:`FaultyWitnessError` is raised (drop the witness).
    """
    if len(primary_trace) < 2:
        raise ValueError("a trace holds the trusted block and at least one verified block")
    target = primary_trace[-1]
    theirs = witness_fetch(target.height)
    if theirs.height != target.height:
        raise FaultyWitnessError(f"witness answered height {theirs.height} for {target.height}")
    if theirs.hash() == target.hash():
        return None
    common = primary_trace[0]
    for block in reversed(primary_trace[1:-1]):
        other = witness_fetch(block.height)
        if other.hash() == block.hash():
            common = block
            break
    try:
        verify_skipping(chain_id, common, theirs, witness_fetch, now_ms, options, verifier)
    except LightClientError as exc:
        raise FaultyWitnessError(
            f"witness header at {theirs.height} does not verify from {common.height}: {exc}"
        ) from exc
    ours = target
    if _state_fields(theirs.header) == _state_fields(ours.header):
        kind = "equivocation"
        names = _signers(theirs.commit) & _signers(ours.commit)
        valset = theirs.validators
    else:
        kind = "lunatic"
        names = _signers(theirs.commit)
        valset = common.validators
    byzantine = tuple(v for v in valset.validators if v.address in names)
    return LightClientAttackEvidence(theirs, common.height, byzantine, valset.total_power,
                                     common.time_ms, kind)
