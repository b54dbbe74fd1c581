"""Compact proposals: a proposed block's txs named by hash, rebuilt from the receiver's mempool.

A validator has already received almost every tx of a proposal through mempool gossip, yet a
whole block repeats them: on the 4-validator testnet under load, proposals of 1-2 MB reached
peers 500 ms after signing, past the propose timeout, and rounds failed one after another
while the next proposal grew (bench/e2e.py, debug logs). Naming txs by their 32-byte hash cuts
a proposal to a few KB. The proposer still sends the bytes of txs it admitted within
``FRESH_SECONDS`` (peers may not have them yet); a receiver missing any tx asks the sender for
the whole proposal (``ProposalRequest``), which is how every proposal travelled before.

Safety does not depend on any of this: a rebuilt block, like a whole one, must match the header
the proposer signed (``check_block_integrity``), so it is accepted exactly as if it had come
whole.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from consensus.events import ProposalMessage
from primitives.hashing import sha256
from node.messages import CompactProposal

FRESH_SECONDS = 0.3
"""A tx admitted this recently is sent whole: gossip batches it within 25 ms, but a loaded peer
may still be verifying it."""


class TxSource(Protocol):
    def get(self, tx_hash: bytes) -> bytes | None: ...

    def age(self, tx_hash: bytes) -> float | None: ...


def compact(message: ProposalMessage, mempool: TxSource) -> CompactProposal:
    txs = message.block.txs
    hashes = tuple(sha256(tx) for tx in txs)
    included = []
    for index, (tx, tx_hash) in enumerate(zip(txs, hashes)):
        age = mempool.age(tx_hash)
        if age is None or age < FRESH_SECONDS:
            included.append((index, tx))
    return CompactProposal(message.proposal, replace(message.block, txs=()), hashes, tuple(included))


def rebuild(message: CompactProposal, mempool: TxSource) -> ProposalMessage | int:
    """The whole proposal, or how many of its txs this node does not hold.

    Nothing is checked here: whoever takes the rebuilt block checks it against its header
    (``check_block_integrity``), which catches an included tx that is not the listed one as
    surely as any other wrong tx, with one pass of hashing.
    """
    included = dict(message.included)
    txs: list[bytes] = []
    missing = 0
    for index, tx_hash in enumerate(message.tx_hashes):
        tx = included.get(index)
        if tx is None:
            tx = mempool.get(tx_hash)
            if tx is None:
                missing += 1
                continue
        txs.append(tx)
    if missing:
        return missing
    return ProposalMessage(message.proposal, replace(message.block, txs=tuple(txs)))
