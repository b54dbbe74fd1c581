"""Consensus messages from peers, checked before they reach the core.

:class:`InboundMessages` is the receiving side the :class:`node.consensus_driver.ConsensusDriver`
holds: it decodes each message, drops what is stale, repeated or too far ahead, verifies
signatures (undecodable data, a bad signature or a bad catch-up commit disconnect the peer),
rebuilds compact proposals from the mempool or asks for them whole, answers such requests, and
buffers or serves catch-up blocks. Everything that passes goes to the driver's inbox. It is
built from what it uses and owns its bookkeeping (what was seen, asked and answered at this
height, the catch-up buffer, peers' reported status).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from consensus import core
from consensus.blocks import InvalidBlockError, check_block_integrity
from consensus.commit import CommitError, verify_commit
from consensus.events import (
    CatchUp,
    Event,
    EvidenceMessage,
    ProposalMessage,
    ProposalReceived,
    Step,
    TimeoutFired,
    VoteReceived,
)
from consensus.types import Block, Commit, Proposal, Vote
from node.clock import now_ms
from node.compact import rebuild
from node.messages import (
    BadMessage,
    CompactProposal,
    ProposalRequest,
    Status,
    decode_consensus,
    encode_consensus,
)
from node.p2p.network import CONSENSUS_PROTOCOL, PeerMisbehaviour, PeerUnavailable

if TYPE_CHECKING:
    from node.chain import Chain
    from node.evidence import EvidencePool
    from node.mempool import Mempool
    from node.p2p.network import Network

log = logging.getLogger("clearchain.consensus")

CATCHUP_AHEAD = 8
"""Committed blocks sent to a peer that reports a lower height, per Status."""
CATCHUP_BUFFER = 64
"""How far ahead of our height a peer's catch-up blocks are kept until their height comes."""
CATCHUP_COPIES = 4
"""Copies of one height kept, each from a different peer (a peer's newer copy replaces its
own). Not first-copy-wins: a peer could pre-fill heights whose validator set is not known yet
(nothing to verify them against) with junk, and the honest copies arriving later would be
dropped; kept per peer, each is verified when its height comes and a bad one only costs its
sender. Bounded: at most this many blocks per height, ``CATCHUP_BUFFER`` heights."""


class InboundMessages:
    def __init__(self, *, chain: Chain, network: Network, mempool: Mempool,
                 verifier: Callable[[bytes, bytes, bytes], bool], evidence: EvidencePool,
                 inbox: trio.MemorySendChannel[Event], wire: Callable[[Any], bytes]) -> None:
        self.chain = chain
        self.network = network
        self.mempool = mempool
        self.verifier = verifier
        self.evidence = evidence
        self._inbox_send = inbox
        self._wire = wire  # how our messages go out (proposals compact)
        self._seen: set[bytes] = set()
        self._asked: set[tuple[str, int, int, bytes]] = set()
        """(peer, height, round) of the ProposalRequests sent, so each is sent once."""
        self._answered: set[tuple[str, int, bytes]] = set()
        """(peer, round) of the ProposalRequests answered at this height."""
        self._seen_height = 0
        self._catchup: dict[int, dict[str, tuple[Block, Commit]]] = {}
        """height -> peer -> that peer's committed block and its commit (verified when due)."""
        self._sent_catchup: dict[tuple[str, int], float] = {}
        self.peer_status: dict[str, Status] = {}

    async def on_message(self, peer: str, data: bytes, state: core.ConsensusState | None) -> None:
        """One message from ``peer``, checked against the core's current ``state``."""
        try:
            message = decode_consensus(data, self.network.config.max_frame_bytes)
        except BadMessage as exc:
            raise PeerMisbehaviour(str(exc)) from exc
        if state is None:
            return
        if state.height != self._seen_height:
            self._seen_height, self._seen, self._asked, self._answered = state.height, set(), set(), set()
        if isinstance(message, Vote):
            await self._on_vote(message, state)
        elif isinstance(message, ProposalMessage):
            await self._on_proposal(message, state)
        elif isinstance(message, CompactProposal):
            await self._on_compact(message, state, peer)
        elif isinstance(message, ProposalRequest):
            await self._send_whole_proposal(peer, message, state)
        elif isinstance(message, Status):
            self.peer_status[peer] = message
            await self._send_catchup(peer, message.height)
        elif isinstance(message, CatchUp):
            await self._on_catchup(message, state, peer)
        elif isinstance(message, EvidenceMessage):
            if not self.evidence.add(message.evidence, state.height) and not self.evidence.valid(
                    message.evidence, state.height):
                raise PeerMisbehaviour("invalid evidence")

    def commit_ok(self, block: Block, commit: Commit) -> bool:
        """Whether ``commit`` commits ``block`` under its height's validator set."""
        validators = self.chain.validators(block.height)
        if validators is None:
            return False
        try:
            check_block_integrity(block)  # the commit signs the header; the header, the rest
            verify_commit(self.chain.chain_id, validators, block.block_id(), block.height, commit,
                          self.verifier)
        except (CommitError, InvalidBlockError):
            return False
        return True

    def next_catchup(self, height: int) -> tuple[Block, Commit] | None:
        """A buffered committed block for ``height`` whose commit verifies, if a peer sent one.

        Older heights are dropped. Copies are tried peer by peer (in arrival order); a bad
        commit disconnects its peer and drops every copy it buffered, and the next copy is tried.
        """
        for stale in [h for h in self._catchup if h < height]:
            del self._catchup[stale]
        copies = self._catchup.pop(height, {})
        for peer, (block, commit) in copies.items():
            if self.commit_ok(block, commit):
                return block, commit
            self.network.disconnect(peer, f"catch-up block {block.height} has a bad commit")
            self._drop_copies_of(peer)
        return None

    def _drop_copies_of(self, peer: str) -> None:
        for height in list(self._catchup):
            self._catchup[height].pop(peer, None)
            if not self._catchup[height]:
                del self._catchup[height]

    def buffered_copies(self, height: int) -> dict[str, Block]:
        """Peer -> the block it sent for ``height``, still unverified (tests, logs)."""
        return {peer: block for peer, (block, _) in self._catchup.get(height, {}).items()}

    def forget_peer(self, peer: str) -> None:
        self.peer_status.pop(peer, None)
        self._drop_copies_of(peer)  # a gone peer's copies would only hold slots
        for key in [k for k in self._sent_catchup if k[0] == peer]:
            del self._sent_catchup[key]

    async def _on_vote(self, vote: Vote, state: core.ConsensusState) -> None:
        if vote.height not in (state.height, state.height + 1) or vote.signature in self._seen:
            return
        validators = self.chain.validators(vote.height)
        if validators is None or vote.validator_index >= len(validators):
            return
        validator = validators.validators[vote.validator_index]
        if validator.address != vote.validator_address:
            return
        if not self.verifier(validator.public_key, vote.sign_bytes(self.chain.chain_id), vote.signature):
            raise PeerMisbehaviour(f"vote {vote!r} has an invalid signature")
        self._seen.add(vote.signature)
        await self._inbox_send.send(VoteReceived(vote))

    def _fresh_signed_proposal(self, proposal: Proposal, block: Block, state: core.ConsensusState) -> bool:
        """Whether a proposal is new, near, signed by its round's proposer and names ``block``
        (a block without txs for a compact proposal: its header commits to them)."""
        if proposal.height not in (state.height, state.height + 1) or proposal.signature in self._seen:
            return False
        # Finding the proposer of round r costs r priority increments: bound r before that, as
        # the core does, or one unsigned message with a huge round freezes the event loop.
        current_round = state.round if proposal.height == state.height else 0
        if proposal.round > current_round + core.MAX_ROUNDS_AHEAD:
            return False
        validators = self.chain.validators(proposal.height)
        if validators is None:
            return False
        proposer = validators.proposer_for_round(proposal.round)
        if not self.verifier(proposer.public_key, proposal.sign_bytes(self.chain.chain_id),
                             proposal.signature):
            raise PeerMisbehaviour(f"proposal {proposal.height}/{proposal.round} has an invalid signature")
        if block.block_id() != proposal.block_id:
            raise PeerMisbehaviour("proposal block does not match its signed block id")
        return True

    async def _on_proposal(self, message: ProposalMessage, state: core.ConsensusState) -> None:
        if self._fresh_signed_proposal(message.proposal, message.block, state):
            await self._take_proposal(message)

    async def _on_compact(self, message: CompactProposal, state: core.ConsensusState, peer: str) -> None:
        """Rebuild the block from our mempool; missing txs: ask the sender for it whole, once."""
        proposal = message.proposal
        if not self._fresh_signed_proposal(proposal, message.block, state):
            return
        whole = rebuild(message, self.mempool)
        if isinstance(whole, int):
            key = (peer, proposal.height, proposal.round, proposal.block_id.hash)
            log.debug("proposal height=%d round=%d: %d of %d txs not held, asking %s for it whole",
                      proposal.height, proposal.round, whole, len(message.tx_hashes), peer)
            if key not in self._asked and await self._send(
                    peer, ProposalRequest(proposal.height, proposal.round, proposal.block_id.hash)):
                self._asked.add(key)  # only once it left: a failed send may be retried on the next copy
            return
        await self._take_proposal(whole)

    async def _take_proposal(self, message: ProposalMessage) -> None:
        """A fresh, signed proposal (whole or rebuilt) goes to the core if its block is the one
        the signed header describes."""
        proposal = message.proposal
        try:
            # The signature covers the header only. Without this, a peer's copy with altered
            # txs or evidence would be marked seen and taken for the block, and the genuine
            # copy ignored: this validator would prevote nil for the round.
            check_block_integrity(message.block)
        except InvalidBlockError as exc:
            raise PeerMisbehaviour(f"proposal {proposal.height}/{proposal.round}: {exc}") from exc
        self._seen.add(proposal.signature)
        log.debug("proposal height=%d round=%d txs=%d received, signed %d ms ago", proposal.height,
                  proposal.round, len(message.block.txs), now_ms() - proposal.timestamp_ms)
        await self._inbox_send.send(ProposalReceived(message))

    async def _send_whole_proposal(self, peer: str, request: ProposalRequest, state: core.ConsensusState) -> None:
        """Answer a ProposalRequest once per peer, height, round and block, if we hold that
        proposal (the one named by hash: a byzantine proposer may have signed several)."""
        key = (peer, request.round, request.block_hash)
        if request.height != state.height or key in self._answered:
            return
        if request.block_hash:
            block_id = next((b for b in state.proposals.get(request.round, {})
                             if b.hash == request.block_hash), None)
        else:
            block_id = state.first_proposal.get(request.round)
        if block_id is None:
            return
        self._answered.add(key)
        whole = ProposalMessage(state.proposals[request.round][block_id], state.blocks[block_id])
        await self._send(peer, whole, compact_proposals=False)

    async def _send(self, peer: str, message: Any, compact_proposals: bool = True) -> bool:
        """Queue a message for one peer; False if the peer is gone."""
        data = self._wire(message) if compact_proposals else encode_consensus(message)
        try:
            await self.network.send(peer, CONSENSUS_PROTOCOL, data)
        except PeerUnavailable:
            return False
        return True

    async def _on_catchup(self, message: CatchUp, state: core.ConsensusState, peer: str) -> None:
        """Buffer a peer's committed block; its commit is verified now if the validator set of
        its height is known, else when the height comes (a bad one disconnects the peer)."""
        block, commit = message.block, message.commit
        height = block.height
        if height < state.height or height > state.height + CATCHUP_BUFFER:
            return
        copies = self._catchup.get(height, {})
        if peer not in copies and len(copies) >= CATCHUP_COPIES:
            return
        if self.chain.validators(height) is not None and not self.commit_ok(block, commit):
            raise PeerMisbehaviour(f"catch-up block {height} has a bad commit")
        self._catchup.setdefault(height, {})[peer] = (block, commit)
        if height == state.height and state.decision is None:
            await self._inbox_send.send(TimeoutFired(-1, -1, Step.NEW_HEIGHT))  # wake the loop

    async def _send_catchup(self, peer: str, their_height: int) -> None:
        """A peer deciding a height we have stored gets the blocks from there on."""
        top = self.chain.height
        if their_height > top or their_height < 1:
            return
        now = time.monotonic()
        for height in range(their_height, min(top, their_height + CATCHUP_AHEAD - 1) + 1):
            key = (peer, height)
            if now - self._sent_catchup.get(key, 0.0) < 0.5:
                continue
            block, commit = self.chain.block(height), self.chain.commit(height)
            if block is None or commit is None:
                return
            self._sent_catchup[key] = now
            try:
                await self.network.send(peer, CONSENSUS_PROTOCOL, encode_consensus(CatchUp(block, commit)))
            except PeerUnavailable:
                return
        if len(self._sent_catchup) > 10_000:
            self._sent_catchup.clear()
