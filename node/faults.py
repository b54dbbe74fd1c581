"""Faults a test switches on in one node through ``[fault_injection]`` (node/config.py).

The fault tests (tests/fault/) need a validator whose clock is off, whose disk stalls, or that
equivocates; each is a real process with a real config, so the fault is set there and applied
here once at start. Nothing here runs unless the section is set, and then the node says so in
its log, field by field: a forgotten switch is loud.

- ``clock_offset_ms``: the node's clock (node/clock.py) reads that far ahead or behind; its
  block and vote times carry it, and it judges others' proposal times by it.
- ``fsync_delay_ms``: every block's synced write sleeps first, on the thread that writes it,
  as a stalled fsync would block it.
- ``byzantine_double_sign_UNSAFE``: :class:`Equivocator`; every vote the node signs is also
  signed for a conflicting block id, and every proposal for a second block, both sent to peers
  beside the honest ones; the private validator's double-sign guard is bypassed by signing
  with the key directly. Peers see two votes of one (height, round, type), which is evidence.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace
from typing import Any

from consensus.events import ProposalMessage
from consensus.types import BlockID, Vote
from node.blockstore import BlockStore
from node.clock import set_offset_ms
from node.config import FaultInjectionSection
from primitives import codec
from primitives.crypto import PrivateKey, Signer
from primitives.hashing import sha256

log = logging.getLogger("clearchain.faults")


class Equivocator:
    """Signs the conflicting twin of every vote and proposal (a byzantine validator)."""

    def __init__(self, key: PrivateKey, chain_id: str) -> None:
        self.signer = Signer(key)
        self.chain_id = chain_id

    def conflicting_vote(self, vote: Vote) -> Vote:
        """The same (height, round, type) for another block id: nil for a block, a made-up
        block for nil."""
        other = None if vote.block_id is not None else BlockID(
            sha256(codec.encode(["equivocation", vote.height, vote.round])))
        twin = replace(vote, block_id=other, signature=b"")
        return replace(twin, signature=self.signer.sign(twin.sign_bytes(self.chain_id)))

    def second_proposal(self, message: ProposalMessage) -> ProposalMessage:
        """A valid second block for the same (height, round): the header's time 1 ms later."""
        block = message.block
        other = replace(block, header=replace(block.header, time_ms=block.header.time_ms + 1))
        proposal = replace(message.proposal, block_id=other.block_id(), signature=b"")
        signed = replace(proposal, signature=self.signer.sign(proposal.sign_bytes(self.chain_id)))
        return ProposalMessage(signed, other)


def slow_writes(blocks: BlockStore, delay_ms: int) -> None:
    """Make every block write of ``blocks`` sleep ``delay_ms`` first (a stalling fsync)."""
    write = blocks.write_block

    def delayed(*args: Any, **kwargs: Any) -> bytes:
        time.sleep(delay_ms / 1000)
        return write(*args, **kwargs)

    blocks.write_block = delayed  # type: ignore[method-assign]


def install(section: FaultInjectionSection, *, blocks: BlockStore, validator_key: PrivateKey | None,
            chain_id: str) -> Equivocator | None:
    """Apply ``section`` to this process; returns the equivocator to hand the consensus
    driver, if the node is to double-sign."""
    if section == FaultInjectionSection():
        return None
    active = {name: value for name, value in asdict(section).items()
              if value != getattr(FaultInjectionSection(), name)}
    log.warning("FAULT INJECTION ACTIVE (a test node, not for real use): %s",
                ", ".join(f"{k}={v}" for k, v in sorted(active.items())))
    set_offset_ms(section.clock_offset_ms)
    if section.fsync_delay_ms:
        slow_writes(blocks, section.fsync_delay_ms)
    if section.byzantine_double_sign_UNSAFE and validator_key is not None:
        log.warning("BYZANTINE: this validator signs conflicting votes and proposals and will be jailed")
        return Equivocator(validator_key, chain_id)
    return None
