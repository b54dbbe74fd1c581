"""Wire messages of the consensus, block sync and snapshot protocols.

Each message is one canonical-msgpack list ``[kind, ...]`` inside a p2p frame (the mempool
protocol sends raw tx bytes and needs no envelope). Decoding never trusts the peer: anything
malformed raises :class:`BadMessage`, which the handlers turn into a disconnect.

Consensus protocol:
    ["vote", Vote]                      a prevote or precommit
    ["proposal", ProposalMessage]       a signed proposal with its whole block
    ["compact", Proposal, Block without txs, [tx hash, ...], [[index, tx], ...]]
                                        the same, its txs named by hash (node/compact.py); the
                                        bytes only of txs the receiver may not hold yet
    ["get_proposal", height, round, block_hash]
                                        "send me that proposal whole" (a compact one fell short);
                                        without block_hash: the round's first proposal
    ["status", height, round, step]     "I am deciding ``height``" (peers ahead send catch-up)
    ["catchup", Block, Commit]          a committed block and its commit certificate
    ["evidence", DuplicateVoteEvidence]
Block sync protocol:
    ["status_request"] / ["status", base, height]
    ["get", request_id, first_height, count]
    ["blocks", request_id, [[block bytes, commit bytes], ...]]   (raw store bytes, no re-encode)
Snapshot protocol (``/clearchain/snapshot/1``, node/snapshots.py):
    ["list", request_id] / ["snapshots", request_id, [manifest, ...]]
    ["get_chunk", request_id, height, index] / ["chunk", request_id, height, index, bytes | nil]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from primitives.codec import CodecError, decode, encode
from consensus.events import CatchUp, EvidenceMessage, ProposalMessage
from consensus.types import Block, Commit, DuplicateVoteEvidence, MessageError, Proposal, Vote
from consensus.validators import ValidatorSetError


class BadMessage(ValueError):
    """Bytes from a peer that are not a valid protocol message."""


@dataclass(frozen=True)
class Status:
    height: int
    round: int
    step: int


@dataclass(frozen=True)
class CompactProposal:
    """A signed proposal whose block lists its txs by hash (sha256 of the tx bytes).

    ``block`` is the proposed block with no txs (its header still commits to them);
    ``included`` carries ``(index, tx)`` for the txs the proposer judged too fresh for peers to
    hold. A receiver rebuilds the block from these and its mempool, or sends ProposalRequest.
    """

    proposal: Proposal
    block: Block
    tx_hashes: tuple[bytes, ...]
    included: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True)
class ProposalRequest:
    height: int
    round: int
    block_hash: bytes = b""
    """Which of the round's proposals (a byzantine proposer may sign several); empty: the first."""


ConsensusWire = Vote | ProposalMessage | CompactProposal | ProposalRequest | Status | CatchUp | EvidenceMessage


def encode_consensus(message: ConsensusWire) -> bytes:
    if isinstance(message, Vote):
        return encode(["vote", message.to_obj()])
    if isinstance(message, ProposalMessage):
        return encode(["proposal", message.to_obj()])
    if isinstance(message, CompactProposal):
        return encode(["compact", message.proposal.to_obj(), message.block.to_obj(), list(message.tx_hashes),
                       [list(pair) for pair in message.included]])
    if isinstance(message, ProposalRequest):
        return encode(["get_proposal", message.height, message.round, message.block_hash])
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
        if kind == "compact" and len(value) == 5:
            return _compact(value)
        if kind == "get_proposal" and len(value) in (3, 4):
            block_hash = value[3] if len(value) == 4 else b""
            if type(block_hash) is not bytes or len(block_hash) not in (0, 32):
                raise BadMessage("get_proposal: block_hash must be 32 bytes")
            return ProposalRequest(_uint(value[1], "height"), _uint(value[2], "round"), block_hash)
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


def _compact(value: list[Any]) -> CompactProposal:
    block = Block.from_obj(value[2])
    hashes, included = value[3], value[4]
    if block.txs:
        raise BadMessage("a compact proposal's block carries no txs")
    if type(hashes) is not list or any(type(h) is not bytes or len(h) != 32 for h in hashes):
        raise BadMessage("tx hashes must be a list of 32-byte values")
    if type(included) is not list:
        raise BadMessage("included txs must be a list of [index, tx] pairs")
    previous = -1
    for pair in included:
        if (type(pair) is not list or len(pair) != 2 or type(pair[0]) is not int or type(pair[1]) is not bytes
                or not previous < pair[0] < len(hashes)):
            raise BadMessage("included txs must be [index, tx] pairs in increasing index order")
        previous = pair[0]
    return CompactProposal(Proposal.from_obj(value[1]), block, tuple(hashes),
                           tuple((index, tx) for index, tx in included))


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


# --- snapshots (state sync) ---------------------------------------------------------------


@dataclass(frozen=True)
class ListSnapshots:
    request_id: int


@dataclass(frozen=True)
class SnapshotList:
    request_id: int
    manifests: tuple[Any, ...]
    """Manifest objects (``state.store.snapshot.Manifest.to_obj``), checked by the asker."""


@dataclass(frozen=True)
class GetChunk:
    request_id: int
    height: int
    index: int


@dataclass(frozen=True)
class Chunk:
    request_id: int
    height: int
    index: int
    data: bytes | None
    """None: the peer does not hold that snapshot (any more)."""


SnapshotWire = ListSnapshots | SnapshotList | GetChunk | Chunk


def encode_snapshot(message: SnapshotWire) -> bytes:
    if isinstance(message, ListSnapshots):
        return encode(["list", message.request_id])
    if isinstance(message, SnapshotList):
        return encode(["snapshots", message.request_id, list(message.manifests)])
    if isinstance(message, GetChunk):
        return encode(["get_chunk", message.request_id, message.height, message.index])
    if isinstance(message, Chunk):
        return encode(["chunk", message.request_id, message.height, message.index, message.data])
    raise TypeError(f"not a snapshot message: {type(message).__name__}")


def decode_snapshot(data: bytes, max_bytes: int) -> SnapshotWire:
    value = _envelope(data, max_bytes)
    kind = value[0]
    if kind == "list" and len(value) == 2:
        return ListSnapshots(_uint(value[1], "request id"))
    if kind == "snapshots" and len(value) == 3:
        if type(value[2]) is not list:
            raise BadMessage("snapshots must be a list of manifests")
        return SnapshotList(_uint(value[1], "request id"), tuple(value[2]))
    if kind == "get_chunk" and len(value) == 4:
        return GetChunk(_uint(value[1], "request id"), _uint(value[2], "height"),
                        _uint(value[3], "index"))
    if kind == "chunk" and len(value) == 5:
        if value[4] is not None and type(value[4]) is not bytes:
            raise BadMessage("a chunk's data is bytes or nil")
        return Chunk(_uint(value[1], "request id"), _uint(value[2], "height"),
                     _uint(value[3], "index"), value[4])
    raise BadMessage(f"unknown snapshot message {kind!r}")
