"""Building a proposal block and the consensus-level checks of a proposed block.

The node shell builds blocks with :func:`make_block` when the core asks for a proposal
(:class:`consensus.events.RequestProposal` carries what the core knows). The core itself runs
:func:`check_block` on every proposed block; the application-level checks (tx validity, evidence
validity, next_validators_hash, last_results_hash) are the shell's, answered with
:class:`consensus.events.BlockValidated`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consensus.commit import CommitError, Verifier, verify_commit
from primitives.crypto import verify
from primitives.hashing import EMPTY_HASH
from consensus.types import (
    Block,
    BlockID,
    Commit,
    DuplicateVoteEvidence,
    Header,
    commit_hash,
    evidence_hash,
    txs_hash,
)
from consensus.validators import ValidatorSet


class InvalidBlockError(ValueError):
    """A proposed block that breaks a consensus rule (the message says which)."""


@dataclass(frozen=True)
class BlockLimits:
    max_bytes: int = 4 * 1024 * 1024
    max_txs: int = 10_000


def make_block(
    *,
    chain_id: str,
    height: int,
    time_ms: int,
    last_block_id: BlockID | None,
    last_commit: Commit | None,
    txs: Sequence[bytes],
    evidence: Sequence[DuplicateVoteEvidence],
    validators: ValidatorSet,
    next_validators: ValidatorSet,
    app_hash: bytes,
    last_results_hash: bytes,
    proposer_address: bytes,
) -> Block:
    """Assemble a block whose header commits to its contents."""
    header = Header(
        chain_id=chain_id,
        height=height,
        time_ms=time_ms,
        last_block_id=last_block_id,
        last_commit_hash=commit_hash(last_commit),
        data_hash=txs_hash(list(txs)),
        validators_hash=validators.hash(),
        next_validators_hash=next_validators.hash(),
        app_hash=app_hash,
        last_results_hash=last_results_hash,
        evidence_hash=evidence_hash(list(evidence)),
        proposer_address=proposer_address,
    )
    return Block(header, tuple(txs), tuple(evidence), last_commit)


def check_block_integrity(block: Block) -> None:
    """The header's hashes match the block's contents, so the block id fixes the whole block.

    A commit signs the header only: whoever receives a block with its commit (catch-up, block
    sync) must run this before trusting the txs, evidence and last commit.
    """
    h = block.header
    if h.data_hash != txs_hash(list(block.txs)):
        raise InvalidBlockError("data_hash does not match the txs")
    if h.evidence_hash != evidence_hash(list(block.evidence)):
        raise InvalidBlockError("evidence_hash does not match the evidence")
    if h.last_commit_hash != commit_hash(block.last_commit):
        raise InvalidBlockError("last_commit_hash does not match the last commit")


def check_block(
    block: Block,
    *,
    chain_id: str,
    height: int,
    validators: ValidatorSet,
    last_validators: ValidatorSet | None,
    last_block_id: BlockID | None,
    last_block_time_ms: int,
    app_hash: bytes,
    limits: BlockLimits,
    verifier: Verifier = verify,
) -> None:
    """Raise :class:`InvalidBlockError` unless ``block`` fits the chain at ``height``."""
    h = block.header
    if h.chain_id != chain_id:
        raise InvalidBlockError(f"chain id {h.chain_id!r} is not {chain_id!r}")
    if h.height != height:
        raise InvalidBlockError(f"height {h.height} is not {height}")
    if h.last_block_id != last_block_id:
        raise InvalidBlockError("last_block_id does not match the previous block")
    if height > 1 and h.time_ms <= last_block_time_ms:
        raise InvalidBlockError("block time does not move forward")
    if h.validators_hash != validators.hash():
        raise InvalidBlockError("validators_hash does not match the height's validator set")
    if h.app_hash != app_hash:
        raise InvalidBlockError("app_hash does not match the state after the previous block")
    if validators.index_of(h.proposer_address) < 0:
        raise InvalidBlockError("proposer is not a validator")
    check_block_integrity(block)
    if len(block.txs) > limits.max_txs:
        raise InvalidBlockError(f"{len(block.txs)} txs exceed the limit of {limits.max_txs}")
    if len(block.encode()) > limits.max_bytes:
        raise InvalidBlockError(f"block exceeds {limits.max_bytes} bytes")
    if height == 1:
        if block.last_commit is not None or h.last_commit_hash != EMPTY_HASH:
            raise InvalidBlockError("the first block carries no last commit")
        return
    if block.last_commit is None or last_validators is None or last_block_id is None:
        raise InvalidBlockError("the block lacks the previous height's commit")
    try:
        verify_commit(
            chain_id, last_validators, last_block_id, height - 1, block.last_commit, verifier
        )
    except CommitError as exc:
        raise InvalidBlockError(f"last commit: {exc}") from exc
