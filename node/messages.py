"""Wire messages of the ``/clearchain/consensus/1`` and ``/clearchain/blocksync/1`` protocols.

Each message is one canonical-msgpack list ``[kind, ...]`` inside a p2p frame (the mempool
protocol sends raw tx bytes and needs no envelope). Decoding never trusts the peer: anything
malformed raises :class:`BadMessage`, which the handlers turn into a disconnect.

Consensus protocol:
    ["vote", Vote]                      a prevote or precommit
    ["proposal", ProposalMessage]       a signed proposal with its whole block
    ["status", height, round, step]     "I am deciding ``height``" (peers ahead send catch-up)
    ["catchup", Block, Commit]          a committed block and its commit certificate
    ["evidence", DuplicateVoteEvidence]
Block sync protocol:
    ["status_request"] / ["status", base, height]
    ["get", request_id, first_height, count]
    ["blocks", request_id, [[block bytes, commit bytes], ...]]   (raw store bytes, no re-encode)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus.codec import CodecError, decode, encode
from consensus.events import ProposalMessage
from consensus.types import Block, Commit, DuplicateVoteEvidence, MessageError, Vote
from consensus.validators import ValidatorSetError


class BadMessage(ValueError):
    """Bytes from a peer that are not a valid protocol message."""


@dataclass(frozen=True)
class Status:
    height: int
    round: int
    step: int


@dataclass(frozen=True)
class CatchUp:
    block: Block
    commit: Commit


@dataclass(frozen=True)
class EvidenceMessage:
    evidence: DuplicateVoteEvidence


ConsensusWire = Vote | ProposalMessage | Status | CatchUp | EvidenceMessage


def encode_consensus(message: ConsensusWire) -> bytes:
    if isinstance(message, Vote):
        return encode(["vote", message.to_obj()])
    if isinstance(message, ProposalMessage):
        return encode(["proposal", message.to_obj()])
    if isinstance(message, Status):
        return encode(["status", message.height, message.round, message.step])
    if isinstance(message, CatchUp):
        return encode(["catchup", message.block.to_obj(), message.commit.to_obj()])
    if isinstance(message, EvidenceMessage):
        return encode(["evidence", message.evidence.to_obj()])
    raise TypeError(f"not a consensus message: {type(message).__name__}")


def _envelope(data: bytes, max_bytes: int) -> list[Any]:
    try:
        value = decode(data, max_bytes=max_bytes)
    except CodecError as exc:
        raise BadMessage(f"undecodable message: {exc}") from exc
    if type(value) is not list or not value or type(value[0]) is not str:
        raise BadMessage("a message is a list starting with its kind")
    return value


def _uint(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise BadMessage(f"{what} must be a non-negative integer")
    return value


def decode_consensus(data: bytes, max_bytes: int) -> ConsensusWire:
    value = _envelope(data, max_bytes)
    kind = value[0]
    try:
        if kind == "vote" and len(value) == 2:
            return Vote.from_obj(value[1])
        if kind == "proposal" and len(value) == 2:
            return ProposalMessage.from_obj(value[1])
        if kind == "status" and len(value) == 4:
            return Status(_uint(value[1], "height"), _uint(value[2], "round"), _uint(value[3], "step"))
        if kind == "catchup" and len(value) == 3:
            return CatchUp(Block.from_obj(value[1]), Commit.from_obj(value[2]))
        if kind == "evidence" and len(value) == 2:
            return EvidenceMessage(DuplicateVoteEvidence.from_obj(value[1]))
    except (MessageError, ValidatorSetError, TypeError, ValueError, KeyError, IndexError) as exc:
        if isinstance(exc, BadMessage):
            raise
        raise BadMessage(f"malformed {kind} message: {exc}") from exc
    raise BadMessage(f"unknown consensus message {kind!r} with {len(value) - 1} fields")


# --- block sync ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusRequest:
    pass


@dataclass(frozen=True)
class SyncStatus:
    base: int
    height: int


@dataclass(frozen=True)
class GetBlocks:
    request_id: int
    first: int
    count: int


@dataclass(frozen=True)
class Blocks:
    request_id: int
    items: tuple[tuple[bytes, bytes], ...]


SyncWire = StatusRequest | SyncStatus | GetBlocks | Blocks


def encode_sync(message: SyncWire) -> bytes:
    if isinstance(message, StatusRequest):
        return encode(["status_request"])
    if isinstance(message, SyncStatus):
        return encode(["status", message.base, message.height])
    if isinstance(message, GetBlocks):
        return encode(["get", message.request_id, message.first, message.count])
    if isinstance(message, Blocks):
        return encode(["blocks", message.request_id, [list(item) for item in message.items]])
    raise TypeError(f"not a block sync message: {type(message).__name__}")


def decode_sync(data: bytes, max_bytes: int) -> SyncWire:
    value = _envelope(data, max_bytes)
    kind = value[0]
    if kind == "status_request" and len(value) == 1:
        return StatusRequest()
    if kind == "status" and len(value) == 3:
        return SyncStatus(_uint(value[1], "base"), _uint(value[2], "height"))
    if kind == "get" and len(value) == 4:
        return GetBlocks(_uint(value[1], "request id"), _uint(value[2], "first"), _uint(value[3], "count"))
    if kind == "blocks" and len(value) == 3:
        items = value[2]
        if type(items) is not list or not all(
            type(i) is list and len(i) == 2 and type(i[0]) is bytes and type(i[1]) is bytes for i in items
        ):
            raise BadMessage("blocks must be a list of [block bytes, commit bytes]")
        return Blocks(_uint(value[1], "request id"), tuple((i[0], i[1]) for i in items))
    raise BadMessage(f"unknown block sync message {kind!r}")
