"""Consensus messages and blocks: frozen dataclasses with one canonical plain-value form.

Every type has ``to_obj()`` (dicts/lists/bytes/ints for :mod:`primitives.codec`) and
``from_obj(obj)`` (strict: wrong shapes raise :class:`MessageError`). Signed messages sign
``primitives.crypto.sign_bytes(tag, chain_id, body)``, so a vote of one chain can never be replayed
on another, nor a proposal passed off as a vote.

A block id is the hash of the block's header; the header commits to the txs (``data_hash`` is the
Merkle root of the txs), the evidence and the previous block's commit, so the block id fixes the
whole block. A nil vote has ``block_id is None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from primitives.codec import CodecError, decode, encode
from primitives.hashing import HASH_SIZE, hash_value, merkle_root

VOTE_TAG = "clearchain/vote"
PROPOSAL_TAG = "clearchain/proposal"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class MessageError(ValueError):
    """A message or block whose plain form is malformed."""


class VoteType(IntEnum):
    PREVOTE = 1
    PRECOMMIT = 2


class CommitFlag(IntEnum):
    """What a commit records for one validator (CometBFT's BlockIDFlag)."""

    ABSENT = 1
    COMMIT = 2
    NIL = 3


# --- small checked accessors for from_obj ------------------------------------------------


def _field(obj: Any, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(obj, dict):
        raise MessageError(f"{what} must be a map")
    if key not in obj:
        raise MessageError(f"{what} lacks field {key!r}")
    value = obj[key]
    if isinstance(kind, tuple):
        ok = any(type(value) is k or (k is type(None) and value is None) for k in kind)
    else:
        ok = type(value) is kind
    if not ok:
        raise MessageError(f"{what}.{key} has the wrong type ({type(value).__name__})")
    return value


def _uint(obj: Any, key: str, what: str) -> int:
    value = _field(obj, key, int, what)
    if value < 0:
        raise MessageError(f"{what}.{key} must not be negative")
    return value


def _hash(obj: Any, key: str, what: str, nullable: bool = False) -> bytes | None:
    value = _field(obj, key, (bytes, type(None)) if nullable else bytes, what)
    if value is not None and len(value) != HASH_SIZE:
        raise MessageError(f"{what}.{key} must be {HASH_SIZE} bytes")
    return value


def _cached_sign_bytes(message: Any, tag: str, chain_id: str) -> bytes:
    """Sign bytes of an immutable message, computed once per chain id."""
    cached = message.__dict__.get("_sign_bytes")
    if cached is not None and cached[0] == chain_id:
        return cached[1]
    data = encode([tag, chain_id, message.sign_body()])
    object.__setattr__(message, "_sign_bytes", (chain_id, data))
    return data


# --- block id, header ---------------------------------------------------------------------



def _cached_hash(message: Any) -> bytes:
    """SHA-256 of a frozen message's canonical form, computed once (the message is immutable)."""
    cached = message.__dict__.get("_hash")
    if cached is None:
        cached = hash_value(message.to_obj())
        object.__setattr__(message, "_hash", cached)
    return cached

@dataclass(frozen=True)
class BlockID:
    """Identifies a block: the hash of its header."""

    hash: bytes

    def __post_init__(self) -> None:
        if type(self.hash) is not bytes or len(self.hash) != HASH_SIZE:
            raise MessageError(f"block id must be {HASH_SIZE} bytes")

    def to_obj(self) -> bytes:
        return self.hash

    @classmethod
    def from_obj(cls, obj: Any) -> BlockID:
        if type(obj) is not bytes:
            raise MessageError("block id must be bytes")
        return cls(obj)

    def __repr__(self) -> str:
        return f"BlockID({self.hash[:4].hex()})"


def _bid_obj(block_id: BlockID | None) -> bytes | None:
    return None if block_id is None else block_id.hash


def _bid_from(value: Any) -> BlockID | None:
    return None if value is None else BlockID.from_obj(value)


@dataclass(frozen=True)
class Header:
    chain_id: str
    height: int
    time_ms: int
    """Proposer's clock when it built the block; strictly greater than the previous block's."""
    last_block_id: BlockID | None
    """None only at height 1."""
    last_commit_hash: bytes
    """Hash of the previous height's commit carried in this block (EMPTY_HASH at height 1)."""
    data_hash: bytes
    """Merkle root of the txs."""
    validators_hash: bytes
    next_validators_hash: bytes
    app_hash: bytes
    """Application state after the previous block."""
    last_results_hash: bytes
    evidence_hash: bytes
    proposer_address: bytes

    def to_obj(self) -> dict:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "time_ms": self.time_ms,
            "last_block_id": _bid_obj(self.last_block_id),
            "last_commit_hash": self.last_commit_hash,
            "data_hash": self.data_hash,
            "validators_hash": self.validators_hash,
            "next_validators_hash": self.next_validators_hash,
            "app_hash": self.app_hash,
            "last_results_hash": self.last_results_hash,
            "evidence_hash": self.evidence_hash,
            "proposer_address": self.proposer_address,
        }

    @classmethod
    def from_obj(cls, obj: Any) -> Header:
        w = "header"
        return cls(
            chain_id=_field(obj, "chain_id", str, w),
            height=_uint(obj, "height", w),
            time_ms=_uint(obj, "time_ms", w),
            last_block_id=_bid_from(_field(obj, "last_block_id", (bytes, type(None)), w)),
            last_commit_hash=_hash(obj, "last_commit_hash", w),
            data_hash=_hash(obj, "data_hash", w),
            validators_hash=_hash(obj, "validators_hash", w),
            next_validators_hash=_hash(obj, "next_validators_hash", w),
            app_hash=_field(obj, "app_hash", bytes, w),
            last_results_hash=_hash(obj, "last_results_hash", w),
            evidence_hash=_hash(obj, "evidence_hash", w),
            proposer_address=_field(obj, "proposer_address", bytes, w),
        )

    def hash(self) -> bytes:
        return _cached_hash(self)

    def block_id(self) -> BlockID:
        return BlockID(self.hash())


# --- votes and proposals ------------------------------------------------------------------


@dataclass(frozen=True)
class Vote:
    type: VoteType
    height: int
    round: int
    block_id: BlockID | None
    """None is a vote for nil."""
    timestamp_ms: int
    validator_address: bytes
    validator_index: int
    signature: bytes = b""

    def sign_body(self) -> list:
        return [
            int(self.type),
            self.height,
            self.round,
            _bid_obj(self.block_id),
            self.timestamp_ms,
            self.validator_address,
        ]

    def sign_bytes(self, chain_id: str) -> bytes:
        return _cached_sign_bytes(self, VOTE_TAG, chain_id)

    def to_obj(self) -> dict:
        return {
            "type": int(self.type),
            "height": self.height,
            "round": self.round,
            "block_id": _bid_obj(self.block_id),
            "timestamp_ms": self.timestamp_ms,
            "validator_address": self.validator_address,
            "validator_index": self.validator_index,
            "signature": self.signature,
        }

    @classmethod
    def from_obj(cls, obj: Any) -> Vote:
        w = "vote"
        type_ = _field(obj, "type", int, w)
        if type_ not in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            raise MessageError(f"vote.type {type_} is unknown")
        return cls(
            type=VoteType(type_),
            height=_uint(obj, "height", w),
            round=_uint(obj, "round", w),
            block_id=_bid_from(_field(obj, "block_id", (bytes, type(None)), w)),
            timestamp_ms=_uint(obj, "timestamp_ms", w),
            validator_address=_field(obj, "validator_address", bytes, w),
            validator_index=_uint(obj, "validator_index", w),
            signature=_field(obj, "signature", bytes, w),
        )

    def __repr__(self) -> str:
        kind = "Prevote" if self.type == VoteType.PREVOTE else "Precommit"
        return (
            f"{kind}(h={self.height} r={self.round} {self.block_id!r} "
            f"v={self.validator_index} ts={self.timestamp_ms})"
        )


@dataclass(frozen=True)
class Proposal:
    height: int
    round: int
    pol_round: int
    """validRound of the proposer (-1: none); a re-proposal carries the round of its polka."""
    block_id: BlockID
    timestamp_ms: int
    signature: bytes = b""

    def sign_body(self) -> list:
        return [self.height, self.round, self.pol_round, self.block_id.hash, self.timestamp_ms]

    def sign_bytes(self, chain_id: str) -> bytes:
        return _cached_sign_bytes(self, PROPOSAL_TAG, chain_id)

    def to_obj(self) -> dict:
        return {
            "height": self.height,
            "round": self.round,
            "pol_round": self.pol_round,
            "block_id": self.block_id.hash,
            "timestamp_ms": self.timestamp_ms,
            "signature": self.signature,
        }

    @classmethod
    def from_obj(cls, obj: Any) -> Proposal:
        w = "proposal"
        pol_round = _field(obj, "pol_round", int, w)
        if pol_round < -1:
            raise MessageError("proposal.pol_round must be >= -1")
        return cls(
            height=_uint(obj, "height", w),
            round=_uint(obj, "round", w),
            pol_round=pol_round,
            block_id=BlockID.from_obj(_field(obj, "block_id", bytes, w)),
            timestamp_ms=_uint(obj, "timestamp_ms", w),
            signature=_field(obj, "signature", bytes, w),
        )


# --- commits ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommitSig:
    """One validator's entry in a commit, at that validator's index in the set."""

    flag: CommitFlag
    validator_address: bytes = b""
    timestamp_ms: int = 0
    signature: bytes = b""

    def to_obj(self) -> list:
        return [int(self.flag), self.validator_address, self.timestamp_ms, self.signature]

    @classmethod
    def from_obj(cls, obj: Any) -> CommitSig:
        if type(obj) is not list or len(obj) != 4:
            raise MessageError("commit signature must be a list of 4")
        flag, address, ts, sig = obj
        if type(flag) is not int or flag not in (1, 2, 3):
            raise MessageError(f"commit signature flag {flag!r} is unknown")
        if type(address) is not bytes or type(sig) is not bytes or type(ts) is not int or ts < 0:
            raise MessageError("commit signature fields have the wrong types")
        if flag == CommitFlag.ABSENT and (address or ts or sig):
            raise MessageError("an absent commit signature must be empty")
        return cls(CommitFlag(flag), address, ts, sig)


ABSENT = CommitSig(CommitFlag.ABSENT)


@dataclass(frozen=True)
class Commit:
    """+2/3 precommits for one block: the certificate that the block is final.

    ``signatures[i]`` belongs to validator i of the height's validator set. Precommits for nil
    may be kept (flag NIL); they count toward nothing but are still verified.
    """

    height: int
    round: int
    block_id: BlockID
    signatures: tuple[CommitSig, ...]

    def vote_of(self, index: int) -> Vote:
        """Rebuild the precommit that validator ``index`` signed."""
        sig = self.signatures[index]
        return Vote(
            type=VoteType.PRECOMMIT,
            height=self.height,
            round=self.round,
            block_id=self.block_id if sig.flag == CommitFlag.COMMIT else None,
            timestamp_ms=sig.timestamp_ms,
            validator_address=sig.validator_address,
            validator_index=index,
            signature=sig.signature,
        )

    def to_obj(self) -> dict:
        return {
            "height": self.height,
            "round": self.round,
            "block_id": self.block_id.hash,
            "signatures": [s.to_obj() for s in self.signatures],
        }

    @classmethod
    def from_obj(cls, obj: Any) -> Commit:
        w = "commit"
        sigs = _field(obj, "signatures", list, w)
        return cls(
            height=_uint(obj, "height", w),
            round=_uint(obj, "round", w),
            block_id=BlockID.from_obj(_field(obj, "block_id", bytes, w)),
            signatures=tuple(CommitSig.from_obj(s) for s in sigs),
        )

    def hash(self) -> bytes:
        return _cached_hash(self)


# --- evidence -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DuplicateVoteEvidence:
    """Two signed votes of one validator for one (height, round, type), different block ids.

    ``vote_a`` sorts before ``vote_b`` by block id (nil first), so the same double sign always
    yields the same evidence bytes and hash, whoever detected it.
    """

    vote_a: Vote
    vote_b: Vote

    @classmethod
    def of(cls, one: Vote, other: Vote) -> DuplicateVoteEvidence:
        key = lambda v: b"" if v.block_id is None else v.block_id.hash
        a, b = sorted((one, other), key=key)
        return cls(a, b)

    @property
    def height(self) -> int:
        return self.vote_a.height

    @property
    def validator_address(self) -> bytes:
        return self.vote_a.validator_address

    def to_obj(self) -> dict:
        return {
            "kind": "duplicate_vote",
            "vote_a": self.vote_a.to_obj(),
            "vote_b": self.vote_b.to_obj(),
        }

    @classmethod
    def from_obj(cls, obj: Any) -> DuplicateVoteEvidence:
        if _field(obj, "kind", str, "evidence") != "duplicate_vote":
            raise MessageError("unknown evidence kind")
        return cls(Vote.from_obj(obj.get("vote_a")), Vote.from_obj(obj.get("vote_b")))

    def hash(self) -> bytes:
        return _cached_hash(self)


@dataclass(frozen=True)
class ConflictingCommits:
    """Two commits (each +2/3 precommits) for different blocks at one height.

    Only possible when more than a third of the power signed both: Tendermint's safety
    assumption is broken, and a node holding this must decide neither block. ``commit_a``
    sorts before ``commit_b`` by (round, block id), so one conflict gives one evidence.
    """

    commit_a: Commit
    commit_b: Commit

    @classmethod
    def of(cls, one: Commit, other: Commit) -> ConflictingCommits:
        a, b = sorted((one, other), key=lambda c: (c.round, c.block_id.hash))
        return cls(a, b)

    @property
    def height(self) -> int:
        return self.commit_a.height

    def double_signers(self) -> list[bytes]:
        """Addresses that precommitted both blocks in one round (none across rounds)."""
        a, b = self.commit_a, self.commit_b
        if a.round != b.round:
            return []
        return sorted(
            x.validator_address
            for x, y in zip(a.signatures, b.signatures)
            if x.flag == CommitFlag.COMMIT and y.flag == CommitFlag.COMMIT
        )

    def to_obj(self) -> dict:
        return {
            "kind": "conflicting_commits",
            "commit_a": self.commit_a.to_obj(),
            "commit_b": self.commit_b.to_obj(),
        }

    @classmethod
    def from_obj(cls, obj: Any) -> ConflictingCommits:
        if _field(obj, "kind", str, "evidence") != "conflicting_commits":
            raise MessageError("unknown evidence kind")
        return cls(Commit.from_obj(obj.get("commit_a")), Commit.from_obj(obj.get("commit_b")))


# --- blocks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    header: Header
    txs: tuple[bytes, ...]
    evidence: tuple[DuplicateVoteEvidence, ...]
    last_commit: Commit | None
    """Commit of the previous height (None at height 1)."""

    @property
    def height(self) -> int:
        return self.header.height

    def hash(self) -> bytes:
        return self.header.hash()

    def block_id(self) -> BlockID:
        return self.header.block_id()

    def to_obj(self) -> dict:
        return {
            "header": self.header.to_obj(),
            "txs": list(self.txs),
            "evidence": [e.to_obj() for e in self.evidence],
            "last_commit": None if self.last_commit is None else self.last_commit.to_obj(),
        }

    @classmethod
    def from_obj(cls, obj: Any) -> Block:
        w = "block"
        txs = _field(obj, "txs", list, w)
        if any(type(tx) is not bytes for tx in txs):
            raise MessageError("block txs must be bytes")
        evidence = _field(obj, "evidence", list, w)
        last_commit = _field(obj, "last_commit", (dict, type(None)), w)
        return cls(
            header=Header.from_obj(_field(obj, "header", dict, w)),
            txs=tuple(txs),
            evidence=tuple(DuplicateVoteEvidence.from_obj(e) for e in evidence),
            last_commit=None if last_commit is None else Commit.from_obj(last_commit),
        )

    def encode(self) -> bytes:
        cached = self.__dict__.get("_encoded")
        if cached is None:
            cached = encode(self.to_obj())
            object.__setattr__(self, "_encoded", cached)
        return cached

    @classmethod
    def decode(cls, data: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> Block:
        try:
            return cls.from_obj(decode(data, max_bytes=max_bytes))
        except CodecError as exc:
            raise MessageError(f"block is not canonical msgpack: {exc}") from exc


def txs_hash(txs: tuple[bytes, ...] | list[bytes]) -> bytes:
    """``data_hash``: Merkle root of the txs in block order."""
    return merkle_root(list(txs))


def evidence_hash(
    evidence: tuple[DuplicateVoteEvidence, ...] | list[DuplicateVoteEvidence],
) -> bytes:
    return merkle_root([encode(e.to_obj()) for e in evidence])


def commit_hash(commit: Commit | None) -> bytes:
    return merkle_root([]) if commit is None else commit.hash()
