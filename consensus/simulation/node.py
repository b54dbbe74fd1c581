"""A simulated node: the shell around the pure core, as a real node would drive it.

Durable across a simulated crash: the block store, the WAL up to its last sync, the private
validator's state. Everything else (the core state, timers, the evidence pool, dedup sets) is
lost and rebuilt on restart from the store, the WAL (:func:`consensus.core.replay`) and
:func:`consensus.core.resume`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from collections.abc import Callable
from typing import Any, Protocol

from consensus import core
from consensus.blocks import make_block
from consensus.commit import EvidenceError, verify_duplicate_vote
from primitives.crypto import Signer
from consensus.events import (
    BlockExecuted,
    BlockValidated,
    Broadcast,
    CatchUp,
    CommitBlock,
    CommitReceived,
    Event,
    EvidenceFound,
    EvidenceMessage,
    Halt,
    ProposalBlock,
    ProposalMessage,
    ProposalReceived,
    ProposalSigned,
    Relay,
    RequestProposal,
    ScheduleTimeout,
    SignProposal,
    SignVote,
    ValidateBlock,
    VoteReceived,
    VoteSigned,
)
from primitives.hashing import EMPTY_HASH, sha256
from consensus.privval import DoubleSignError, MemoryPrivvalStore, PrivValidator
from consensus.types import Block, Commit, ConflictingCommits, DuplicateVoteEvidence, Proposal, Vote
from consensus.validators import ValidatorSet
from consensus.wal import decode_records, encode_record


class WorldView(Protocol):
    """What a simulated node sees of its world (``world.World`` is the one implementation):
    the clock, the chain's validator sets, the faulty network, and the checker's notebook."""

    chain_id: str
    now: int
    steps: int
    refusals: int
    verify: Callable[[bytes, bytes, bytes], bool]

    def validator_set(self, height: int) -> ValidatorSet: ...
    def send(self, src: SimNode, dst: int, message: Any, fast: bool = False) -> None: ...
    def note_delivery(self, node: SimNode, vote: Vote) -> None: ...
    def note_signed(self, node: SimNode, vote: Vote) -> None: ...
    def note_proposal(self, node: SimNode, proposal: Proposal, block: Block) -> None: ...
    def note_halt(self, node: SimNode, evidence: ConflictingCommits) -> None: ...
    def note_commit(self, node: SimNode, block: Block, commit: Commit) -> None: ...

GENESIS_APP_HASH = bytes(32)
EVIDENCE_MAX_AGE = 1000
MAX_EVIDENCE_PER_BLOCK = 16


@dataclass(frozen=True)
class Deciding:
    """'I am deciding this height': peers that are further send the block and commit."""

    height: int


@dataclass(frozen=True)
class Bundle:
    messages: tuple[Any, ...]


def app_hash_after(previous: bytes, block: Block) -> bytes:
    """The toy application: its state is a hash chain over the blocks' txs."""
    return sha256(previous + b"".join(sha256(tx) for tx in block.txs))


def tx_is_valid(tx: bytes) -> bool:
    return tx.startswith(b"ok:")


class SimNode:
    def __init__(
        self, world: WorldView, index: int, signer: Signer, behaviours: frozenset[str]
    ) -> None:
        self.world = world
        self.index = index
        self.signer = signer
        self.address = signer.address
        self.behaviours = behaviours
        self.byzantine = bool(behaviours)
        # durable
        self.privval_store = MemoryPrivvalStore()
        self.wal: list[tuple[str, Any]] = []
        self.wal_synced = 0
        self.blocks: dict[int, tuple[Block, Commit]] = {}
        self.app_hashes: dict[int, bytes] = {0: GENESIS_APP_HASH}
        self.committed_evidence: set[bytes] = set()
        self.evidence_pool: dict[bytes, DuplicateVoteEvidence] = {}
        """Durable, as CometBFT's evidence pool (a database)."""
        # volatile
        self.up = False
        self.epoch = 0
        self.state: core.ConsensusState | None = None
        self.privval: PrivValidator | None = None
        self.seen: set[bytes] = set()
        self.seen_height = 0

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return max(self.blocks, default=0)

    def start(self) -> None:
        """Boot (first start or restart): store -> fresh core -> WAL replay -> resume."""
        w = self.world
        self.up = True
        self.epoch += 1
        self.privval = PrivValidator(self.signer, self.privval_store)
        self.seen = set()
        h = self.height
        config = core.CoreConfig(
            chain_id=w.chain_id,
            params=w.scenario.params,
            my_address=self.address,
            verifier=w.verify,
            ignore_lock_for_tests=w.config.broken_lock and not self.byzantine,
        )
        last = self.blocks.get(h)
        state = core.new_height_state(
            config,
            h + 1,
            w.validator_set(h + 1),
            last_validators=w.validator_set(h) if h else None,
            last_block_id=last[0].block_id() if last else None,
            last_block_time_ms=last[0].header.time_ms if last else 0,
            last_commit=last[1] if last else None,
            app_hash=self.app_hashes[h],
        )
        marker = max((i for i, (kind, _) in enumerate(self.wal) if kind == "end"), default=-1)
        events = [item for kind, item in self.wal[marker + 1 :] if kind == "event"]
        self.state = core.replay(state, events)
        w.replayed_events += len(events)
        self.state, actions = core.resume(self.state)
        w.schedule_gossip(self)
        for event in self._perform(actions):
            self.feed(event)

    def crash(self, torn_fraction: float) -> None:
        """Lose volatile state and part of the unsynced WAL tail.

        The WAL since the last end-of-height marker goes through the real record format
        (:mod:`consensus.wal`): the unsynced bytes are cut at an arbitrary point, so the last
        record may be torn, and reading drops it as a node would after a power cut.
        """
        self.up = False
        self.epoch += 1
        self.state = None
        marker = max((i for i, (kind, _) in enumerate(self.wal) if kind == "end"), default=-1)
        tail = [item for _, item in self.wal[marker + 1 :]]
        synced = max(0, self.wal_synced - (marker + 1))
        durable = b"".join(encode_record(ev) for ev in tail[:synced])
        volatile = b"".join(encode_record(ev) for ev in tail[synced:])
        records, _ = decode_records(durable + volatile[: int(len(volatile) * torn_fraction)])
        self.wal = self.wal[: marker + 1] + [("event", r) for r in records]
        self.wal_synced = len(self.wal)

    def _state(self) -> core.ConsensusState:
        if self.state is None:
            raise RuntimeError(f"node {self.index} is down")
        return self.state

    def _privval(self) -> PrivValidator:
        if self.privval is None:
            raise RuntimeError(f"node {self.index} is down")
        return self.privval

    # --- inputs ---------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        pending: deque[Event] = deque([event])
        while pending:
            ev = pending.popleft()
            self.wal.append(("event", ev))
            if isinstance(ev, (VoteSigned, ProposalSigned)):
                self.wal_synced = len(self.wal)  # fsync before our own message can leave
            self.state, actions = core.step(self._state(), ev)
            self.world.steps += 1
            if self.state.height != self.seen_height:
                self.seen_height = self.state.height
                self.seen = set()
            pending.extend(self._perform(actions))

    def on_message(self, src: int, message: Any) -> None:
        if not self.up:
            return
        if isinstance(message, Bundle):
            for item in message.messages:
                self.on_message(src, item)
            return
        state = self._state()
        if isinstance(message, Vote):
            self.world.note_delivery(self, message)
            if message.signature in self.seen:
                return
            if message.height <= state.height + 1:
                self.seen.add(message.signature)
            self.feed(VoteReceived(message))
        elif isinstance(message, ProposalMessage):
            if message.proposal.signature in self.seen:
                return
            if message.proposal.height <= state.height + 1:
                self.seen.add(message.proposal.signature)
            self.feed(ProposalReceived(message))
        elif isinstance(message, Deciding):
            top = self.height
            for h in range(message.height, min(top, message.height + 4) + 1):
                block, commit = self.blocks[h]
                if "bad_signatures" in self.behaviours:  # a lying peer: other txs, same header
                    self.world.send(self, src, CatchUp(replace(block, txs=(b"ok:forged",)), commit))
                self.world.send(self, src, CatchUp(block, commit))
        elif isinstance(message, CatchUp):
            if message.block.height == state.height and state.decision is None:
                self.feed(CommitReceived(message.block, message.commit))
        elif isinstance(message, EvidenceMessage):
            self._add_evidence(message.evidence)

    def gossip(self) -> list[Any]:
        state = self._state()
        messages: list[Any] = list(core.gossip_messages(state))
        messages.append(Deciding(state.height))
        messages.extend(EvidenceMessage(e) for e in self.evidence_pool.values())
        return messages

    # --- actions --------------------------------------------------------------------------

    def _perform(self, actions: list) -> list[Event]:
        w = self.world
        out: list[Event] = []
        for action in actions:
            if isinstance(action, Broadcast):
                w.broadcast_own(self, action.message)
            elif isinstance(action, Relay):
                if w.config.relay:
                    w.broadcast(self, action.message)
            elif isinstance(action, SignVote):
                signed = self._sign_vote(action.vote)
                if signed is not None:
                    out.append(VoteSigned(signed))
            elif isinstance(action, SignProposal):
                signed_message = self._sign_proposal(action)
                if signed_message is not None:
                    out.append(ProposalSigned(signed_message))
            elif isinstance(action, RequestProposal):
                out.append(ProposalBlock(action.height, action.round, self._build_block(action)))
            elif isinstance(action, ValidateBlock):
                out.append(BlockValidated(action.block.block_id(), self._validate(action.block)))
            elif isinstance(action, ScheduleTimeout):
                w.schedule_timeout(self, action)
            elif isinstance(action, CommitBlock):
                out.append(self._commit(action.block, action.commit))
            elif isinstance(action, EvidenceFound):
                w.note_detection(self, action.evidence)
                if self._add_evidence(action.evidence):
                    w.broadcast(self, EvidenceMessage(action.evidence))
            elif isinstance(action, Halt):
                w.note_halt(self, action.evidence)  # a real node persists it and exits
                self.up = False
                return []
        return out

    def _sign_vote(self, vote: Vote) -> Vote | None:
        try:
            signed = self._privval().sign_vote(
                self.world.chain_id, replace(vote, timestamp_ms=self.world.now)
            )
        except DoubleSignError:
            self.world.refusals += 1
            return None
        self.world.note_signed(self, signed)
        return signed

    def _sign_proposal(self, action: SignProposal) -> ProposalMessage | None:
        proposal = replace(action.proposal, timestamp_ms=self.world.now)
        try:
            signed = self._privval().sign_proposal(self.world.chain_id, proposal)
        except DoubleSignError:
            self.world.refusals += 1
            return None
        self.world.note_proposal(self, signed, action.block)
        return ProposalMessage(signed, action.block)

    def _build_block(self, request: RequestProposal, tag: bytes = b"ok") -> Block:
        w = self.world
        h = request.height
        last = self.blocks.get(h - 1)
        last_time = last[0].header.time_ms if last else 0
        evidence = sorted(self.evidence_pool.values(), key=lambda e: e.hash())[
            :MAX_EVIDENCE_PER_BLOCK
        ]
        txs = [b"%s:%d:%d:%d:%d" % (tag, h, request.round, self.index, w.now)]
        return make_block(
            chain_id=w.chain_id,
            height=h,
            time_ms=max(w.now, last_time + 1),
            last_block_id=request.last_block_id,
            last_commit=request.last_commit,
            txs=txs,
            evidence=evidence,
            validators=request.validators,
            next_validators=w.validator_set(h + 1),
            app_hash=request.app_hash,
            last_results_hash=EMPTY_HASH,
            proposer_address=request.proposer_address,
        )

    def _validate(self, block: Block) -> bool:
        """The application's checks (the core already did the consensus ones)."""
        w = self.world
        h = block.height
        if block.header.next_validators_hash != w.validator_set(h + 1).hash():
            return False
        if block.header.last_results_hash != EMPTY_HASH:
            return False
        if not all(tx_is_valid(tx) for tx in block.txs):
            return False
        seen: set[bytes] = set()
        for ev in block.evidence:
            digest = ev.hash()
            if digest in seen or digest in self.committed_evidence or not self._evidence_ok(ev, h):
                return False
            seen.add(digest)
        return True

    def _evidence_ok(self, ev: DuplicateVoteEvidence, at_height: int) -> bool:
        if not (at_height - EVIDENCE_MAX_AGE <= ev.height <= at_height):
            return False
        try:
            verify_duplicate_vote(
                self.world.chain_id, self.world.validator_set(ev.height), ev, self.world.verify
            )
        except EvidenceError:
            return False
        return True

    def _add_evidence(self, ev: DuplicateVoteEvidence) -> bool:
        digest = ev.hash()
        if digest in self.evidence_pool or digest in self.committed_evidence:
            return False
        state = self.state
        if state is None or not self._evidence_ok(ev, state.height):
            return False
        self.evidence_pool[digest] = ev
        return True

    def _commit(self, block: Block, commit: Commit) -> Event:
        h = block.height
        if h not in self.blocks:
            app_hash = app_hash_after(self.app_hashes[h - 1], block)
            self.blocks[h] = (block, commit)
            self.app_hashes[h] = app_hash
            for ev in block.evidence:
                digest = ev.hash()
                self.committed_evidence.add(digest)
                self.evidence_pool.pop(digest, None)
            self.world.note_commit(self, block, commit)
        self.wal.append(("end", h))
        self.wal_synced = len(self.wal)
        return BlockExecuted(h, self.app_hashes[h], self.world.validator_set(h + 1))
