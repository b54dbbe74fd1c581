"""The consensus shell: drives the pure core (:mod:`consensus.core`) with real I/O.

One task owns the core state. Every input (peer message, fired timer, signature, application
verdict, executed block) becomes an event that is appended to the WAL before the core steps on
it (fsynced for our own signed messages, so a vote is durable before it can leave), and every
action the core returns is performed here: broadcasts go to the p2p layer, timers are trio
tasks, signatures come from the private validator (which refuses to double sign), proposals are
built from the mempool, and a decided block goes through :meth:`node.chain.Chain.execute`.

Liveness after losses (restarts, partitions, a stopped process): every peer gets our Status
("I am deciding height h") when it connects, on each new height and periodically, together with
our own messages of the height (:func:`consensus.core.gossip_messages`). A peer that is ahead
answers with the committed blocks and their commits (catch-up), which the core accepts after
verifying the commit.

Peer messages are checked here before they reach the core: undecodable data, a vote or proposal
with a bad signature, or a catch-up with a bad commit disconnect the peer (logged). The same
signature is then verified again by the core through a cache, so it costs one verification.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import trio

from consensus import core
from consensus.blocks import make_block
from consensus.events import (
    BlockExecuted,
    BlockValidated,
    Broadcast,
    CommitBlock,
    CommitReceived,
    Event,
    EvidenceFound,
    EvidenceMessage,
    Halt,
    ProposalBlock,
    ProposalMessage,
    ProposalSigned,
    Relay,
    RequestProposal,
    ScheduleTimeout,
    SignProposal,
    SignVote,
    Step,
    TimeoutFired,
    ValidateBlock,
    VoteReceived,
    VoteSigned,
)
from consensus.privval import DoubleSignError, PrivValidator, PrivvalWriteError
from consensus.types import Block, Commit, Vote
from consensus.wal import WAL, EndHeight, encode_record, events_after_height
from primitives.durable import replace_file
from node.chain import Chain, ExecutedBlock
from node.consensus_halt import record_halt
from node.clock import now_ms
from node.compact import compact
from node.consensus_inbound import InboundMessages
from node.evidence import EvidencePool
from node.execution import ExecutionGate
from node.faults import Equivocator
from node.mempool import Mempool
from node.messages import (
    Status,
    encode_consensus,
)
from node.p2p.network import CONSENSUS_PROTOCOL, Network, PeerUnavailable
from node.storage_failure import StorageFailure
from node.verifier import CachedVerifier

log = logging.getLogger("clearchain.consensus")

INBOX_SIZE = 2048
WAL_ROTATE_BYTES = 32 * 1024 * 1024
BLOCK_OVERHEAD_BYTES = 64 * 1024


# How far ahead of our clock a proposed block's time may be (clock skew between honest nodes).
MAX_FUTURE_BLOCK_TIME_MS = 5_000
MAX_PROPOSE_GRACE_MS = 2_000
"""Bound on the extra proposal wait after a slow block: a dead proposer still costs little."""
MAX_IDLE_S = 3_600.0
"""Longest wait for a tx with ``create_empty_blocks = false`` (funding is due hourly anyway)."""


def _signing_stopped(exc: PrivvalWriteError) -> StorageFailure:
    """Nothing was signed, and every later vote or proposal needs the same write: stop."""
    return StorageFailure("storing the last-signed state in", exc.path, exc.height,
                          exc.__cause__ or exc)


def _height_of(event: Event) -> int | None:
    if isinstance(event, ProposalMessage):
        return event.proposal.height
    if isinstance(event, VoteReceived):
        return event.vote.height
    return None


class ConsensusDriver:
    def __init__(
        self,
        chain: Chain,
        network: Network,
        mempool: Mempool,
        privval: PrivValidator | None,
        wal_path: Path,
        params: core.RoundParams,
        *,
        on_commit: Callable[[ExecutedBlock], None] | None = None,
        gossip_interval: float = 1.0,
        create_empty_blocks: bool = True,
        gate: ExecutionGate | None = None,
    ) -> None:
        self.chain = chain
        self.network = network
        self.mempool = mempool
        self.privval = privval
        self.wal_path = Path(wal_path)
        self.params = params
        self.on_commit = on_commit
        self.gossip_interval = gossip_interval
        self.create_empty_blocks = create_empty_blocks
        self.gate = gate or ExecutionGate()
        """Decided blocks execute in its worker thread; the next height waits for them."""
        self.start_on_txs = True
        """Start a height before ``timeout_commit`` ends once the mempool holds a tx."""
        self._height_wake = trio.Event()
        """Set when a proposal or vote of the height arrives while we wait to start it."""
        self.verifier = CachedVerifier()
        self.config = core.CoreConfig(
            chain_id=chain.chain_id, params=params,
            my_address=privval.address if privval is not None else None, verifier=self.verifier)
        self.state: core.ConsensusState | None = None
        self.wal: WAL | None = None
        self._inbox_send, self._inbox = trio.open_memory_channel[Event](INBOX_SIZE)
        self._nursery: trio.Nursery | None = None
        self.evidence = EvidencePool(chain.chain_id, chain.validators, self.verifier)
        self.inbound = InboundMessages(chain=chain, network=network, mempool=mempool, verifier=self.verifier,
                                       evidence=self.evidence, inbox=self._inbox_send, wire=self._wire)
        self.equivocator: Equivocator | None = None
        """Set only by ``[fault_injection] byzantine_double_sign_UNSAFE`` (node/faults.py)."""
        self.started = trio.Event()
        self._new_height = trio.Event()
        self._height_started = time.monotonic()
        self.last_commit_ms = 0.0
        self._propose_grace_ms = 0.0
        """Extra wait for a proposal: how long this node took to execute the last block."""
        network.set_handler(CONSENSUS_PROTOCOL, self.on_message)
        network.on_peer_connected(self.on_peer_connected)
        network.on_peer_disconnected(self._forget_peer)

    # --- start --------------------------------------------------------------------------------

    def _fresh_state(self) -> core.ConsensusState:
        chain = self.chain
        h = chain.height
        last = chain.block(h) if h else None
        validators = chain.validators(h + 1)
        if validators is None:
            raise RuntimeError(f"validator set of height {h + 1} is missing")
        return core.new_height_state(
            self.config, h + 1, validators,
            last_validators=chain.validators(h) if h else None,
            last_block_id=last.block_id() if last else None,
            last_block_time_ms=last.header.time_ms if last else 0,
            last_commit=chain.commit(h) if h else None,
            app_hash=chain.app_hash,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Replay the WAL, resume, and consume events until cancelled.

        Raises :class:`StorageFailure` when the WAL or the private validator's state cannot
        be written (a full disk): the event or signature they would have covered is dropped
        and the node must stop (``node/storage_failure.py``).
        """
        try:
            self.wal = WAL.open(self.wal_path)
        except OSError as exc:
            raise StorageFailure("opening the consensus WAL", self.wal_path,
                                 self.chain.height + 1, exc) from exc
        try:
            state = self._fresh_state()
            events = events_after_height(self.wal.records_at_open, self.chain.height)
            self.state = core.replay(state, events)
            log.info("consensus starting at height %d round %d step %s (%d WAL events replayed)",
                     self.state.height, self.state.round, self.state.step.name, len(events))
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.state, actions = core.resume(self.state)
                for answer in await self._perform_all(actions):  # e.g. a re-signed vote
                    await self.feed(answer)
                nursery.start_soon(self._gossip_loop)
                self.started.set()
                task_status.started()
                async for event in self._inbox:
                    await self.feed(event)
                    await self._feed_buffered_catchup()
        finally:
            self._nursery = None
            self.wal.close()

    # --- the event loop -----------------------------------------------------------------------

    async def feed(self, event: Event) -> None:
        pending: deque[Event] = deque([event])
        while pending:
            ev = pending.popleft()
            assert self.wal is not None and self.state is not None
            try:  # before the core steps on it: our own votes are durable before they leave
                self.wal.append(ev, sync=isinstance(ev, (VoteSigned, ProposalSigned)))
            except OSError as exc:
                raise StorageFailure("appending to the consensus WAL", self.wal_path,
                                     self.state.height, exc) from exc
            if self.state.step == Step.NEW_HEIGHT and _height_of(ev) == self.state.height:
                self._height_wake.set()  # others started the height: join them
            before = (self.state.height, self.state.round, self.state.step)
            self.state, actions = core.step(self.state, ev)
            after = (self.state.height, self.state.round, self.state.step)
            if after != before:
                self._on_step_change(before, after)
                if after[0] != before[0]:
                    self._new_height.set()
            pending.extend(await self._perform_all(actions))

    async def _perform_all(self, actions: list[Any]) -> list[Event]:
        out: list[Event] = []
        for action in actions:
            produced = await self._perform(action)
            if produced is not None:
                out.append(produced)
        return out

    def _on_step_change(self, before: tuple[int, int, Step], after: tuple[int, int, Step]) -> None:
        height, round_, step = after
        if round_ > 0 and (before[0], before[1]) != (height, round_):
            log.info("height=%d round=%d step=%s (new round)", height, round_, step.name)
        else:
            log.debug("height=%d round=%d step=%s", height, round_, step.name)

    async def on_message(self, peer: str, data: bytes) -> None:
        """A consensus message from a peer: admitted (or refused) by the inbound side."""
        await self.inbound.on_message(peer, data, self.state)

    async def _feed_buffered_catchup(self) -> None:
        """Feed peers' committed blocks for the heights the core is deciding, while they come."""
        state = self.state
        while state is not None and state.decision is None:
            found = self.inbound.next_catchup(state.height)
            if found is None:
                return
            await self.feed(CommitReceived(*found))
            state = self.state

    # --- actions ------------------------------------------------------------------------------

    async def _perform(self, action: Any) -> Event | None:
        if isinstance(action, Broadcast):
            await self._broadcast(action.message)
        elif isinstance(action, Relay):
            pass  # persistent peers form a full mesh; Status/catch-up covers the gaps
        elif isinstance(action, SignVote):
            signed = self._sign_vote(action.vote)
            if isinstance(signed, VoteSigned) and self.equivocator is not None:
                await self._broadcast(self.equivocator.conflicting_vote(signed.vote))
            return signed
        elif isinstance(action, SignProposal):
            proposal = self._sign_proposal(action)
            if isinstance(proposal, ProposalSigned) and self.equivocator is not None:
                await self._send_to_half(self.equivocator.second_proposal(proposal.message))
            return proposal
        elif isinstance(action, RequestProposal):
            return ProposalBlock(action.height, action.round, self._build_block(action))
        elif isinstance(action, ValidateBlock):
            return BlockValidated(action.block.block_id(), self._validate(action.block))
        elif isinstance(action, ScheduleTimeout):
            if self._nursery is not None:
                self._nursery.start_soon(self._timer, action)
        elif isinstance(action, CommitBlock):
            return await self._commit(action.block, action.commit)
        elif isinstance(action, EvidenceFound):
            if self.state is not None and self.evidence.add(action.evidence, self.state.height):
                log.warning("double signing detected: validator %s at height %d",
                            action.evidence.validator_address.hex(), action.evidence.height)
                await self._broadcast(EvidenceMessage(action.evidence))
        elif isinstance(action, Halt):  # conflicting +2/3 precommits: keep the proof, stop
            raise record_halt(self.wal_path, action.evidence)
        return None

    async def _send_to_half(self, message: Any) -> None:
        """A byzantine proposer's second proposal: to half the peers, before the honest one."""
        peers = sorted(self.network.peers())
        for peer in peers[: (len(peers) + 1) // 2]:
            try:
                await self.network.send(peer, CONSENSUS_PROTOCOL, self._wire(message))
            except PeerUnavailable:
                pass

    async def _broadcast(self, message: Any) -> None:
        await self.network.broadcast(CONSENSUS_PROTOCOL, self._wire(message))

    def _wire(self, message: Any) -> bytes:
        """Proposals (ours, and others' we re-gossip) travel compact: peers hold most of their
        txs already."""
        if isinstance(message, ProposalMessage):
            message = compact(message, self.mempool)
        return encode_consensus(message)

    async def _timer(self, action: ScheduleTimeout) -> None:
        if action.step == Step.NEW_HEIGHT:
            await self._wait_to_start_height(action)
            await self._inbox_send.send(TimeoutFired(action.height, action.round, action.step))
            return
        duration_ms = action.duration_ms
        if action.step == Step.PROPOSE:
            # The proposer must execute the last block before it can propose the next one, and
            # on shared cores it may finish well after us: wait that much longer for its
            # proposal, or a busy chain times out round 0 after every big block.
            duration_ms += self._propose_grace_ms
        await trio.sleep(duration_ms / 1000)
        log.debug("timeout height=%d round=%d step=%s after %.0f ms", action.height, action.round,
                  action.step.name, duration_ms)
        await self._inbox_send.send(TimeoutFired(action.height, action.round, action.step))

    async def _wait_to_start_height(self, action: ScheduleTimeout) -> None:
        """The commit timeout, and when to make a block at all (node/README.md, "Block pace").

        The next height starts ``timeout_commit`` after the last commit, or as soon as the
        mempool holds a tx (a loaded chain never waits). With ``create_empty_blocks = false``
        it waits for a tx past that, but no later than the next time the chain's clock needs
        a block: a market's funding falls due or its oracle price turns stale (the block
        records it). A proposal or vote of the height from a peer starts it too.
        """
        self._height_wake = trio.Event()
        await self.gate.idle()  # the clock check below reads the application
        deadline = trio.current_time() + action.duration_ms / 1000
        if not self.create_empty_blocks and self.chain.height > 0:  # block 1 starts the clocks
            deadline = max(deadline, trio.current_time() + self._until_clock_needs_block_s())
        async with trio.open_nursery() as nursery:
            async def first(wait: Callable[[], Any]) -> None:
                await wait()
                nursery.cancel_scope.cancel()

            nursery.cancel_scope.deadline = deadline
            if self.start_on_txs or not self.create_empty_blocks:
                nursery.start_soon(first, self.mempool.wait_for_txs)
            nursery.start_soon(first, self._height_wake.wait)

    def _until_clock_needs_block_s(self) -> float:
        """Seconds until a market's funding is due or its price turns stale, from the last
        block's state and this node's clock (at most ``MAX_IDLE_S``)."""
        app = self.chain.app
        staleness = app.ledger.globals.risk.oracle_staleness_ms
        due = []
        for market in app.ledger.markets.values():
            due.append(market.next_funding_ms)
            turns_stale = market.last_price_ms + staleness + 1
            if turns_stale > app.time_ms:  # not yet recorded as stale by a block
                due.append(turns_stale)
        next_ms = min(due, default=now_ms() + MAX_IDLE_S * 1000)
        return min(MAX_IDLE_S, max(0.0, (next_ms - now_ms()) / 1000))

    def _sign_vote(self, vote: Vote) -> Event | None:
        if self.privval is None:
            return None
        try:
            signed = self.privval.sign_vote(self.chain.chain_id, replace(vote, timestamp_ms=now_ms()))
        except DoubleSignError as exc:
            log.warning("private validator refused to sign: %s", exc)
            return None
        except PrivvalWriteError as exc:
            raise _signing_stopped(exc) from exc
        return VoteSigned(signed)

    def _sign_proposal(self, action: SignProposal) -> Event | None:
        if self.privval is None:
            return None
        try:
            signed = self.privval.sign_proposal(
                self.chain.chain_id, replace(action.proposal, timestamp_ms=now_ms()))
        except DoubleSignError as exc:
            log.warning("private validator refused to sign a proposal: %s", exc)
            return None
        except PrivvalWriteError as exc:
            raise _signing_stopped(exc) from exc
        log.info("proposing height=%d round=%d txs=%d", signed.height, signed.round,
                 len(action.block.txs))
        return ProposalSigned(ProposalMessage(signed, action.block))

    def _build_block(self, request: RequestProposal) -> Block:
        chain, params = self.chain, self.params
        height = request.height
        last = chain.block(height - 1) if height > 1 else None
        last_time = last.header.time_ms if last else 0
        budget = max(0, params.block_max_bytes - BLOCK_OVERHEAD_BYTES - 8 * params.block_max_txs)
        txs = self.mempool.reap(budget, params.block_max_txs)
        evidence = self.evidence.for_block()
        next_validators = chain.validators(height + 1)
        if next_validators is None:
            raise RuntimeError(f"validator set of height {height + 1} is missing")
        return make_block(
            chain_id=chain.chain_id, height=height, time_ms=max(now_ms(), last_time + 1),
            last_block_id=request.last_block_id, last_commit=request.last_commit, txs=txs,
            evidence=evidence, validators=request.validators, next_validators=next_validators,
            app_hash=request.app_hash, last_results_hash=chain.results_hash(height - 1),
            proposer_address=request.proposer_address,
        )

    def _validate(self, block: Block) -> bool:
        """The application-level checks of a proposal (the core did the consensus ones)."""
        chain = self.chain
        height = block.height
        if height != chain.height + 1:
            return False
        if block.header.time_ms > now_ms() + MAX_FUTURE_BLOCK_TIME_MS:
            # Block time drives oracle staleness and funding: a proposer must not be able to
            # push it ahead (the chain would then crawl 1 ms per block behind it).
            log.info("rejecting proposal %d: its time is %d ms ahead of this node's clock",
                     height, block.header.time_ms - now_ms())
            return False
        following = chain.validators(height + 1)
        if following is None or block.header.next_validators_hash != following.hash():
            log.info("rejecting proposal %d: next_validators_hash differs", height)
            return False
        if block.header.last_results_hash != chain.results_hash(height - 1):
            log.info("rejecting proposal %d: last_results_hash differs", height)
            return False
        if not self.evidence.block_ok(block.evidence, height):
            log.info("rejecting proposal %d: bad or repeated evidence", height)
            return False
        return True

    async def _commit(self, block: Block, commit: Commit) -> Event:
        """Execute a decided block in the gate's worker thread (p2p and RPC go on meanwhile)
        and only then tell the core: the next height starts on the stored block."""
        chain = self.chain
        height = block.height
        if height > chain.height:
            started = time.monotonic()
            # AppHashMismatch halts the node
            executed = await self.gate.execute(partial(chain.execute, block, commit))
            took = (time.monotonic() - started) * 1000
            self._propose_grace_ms = min(MAX_PROPOSE_GRACE_MS, took)
            self.evidence.mark_committed(block.evidence)
            interval = (time.monotonic() - self._height_started) * 1000
            self._height_started = time.monotonic()
            self.last_commit_ms = interval
            log.info("committed height=%d round=%d txs=%d app_hash=%s exec_ms=%.1f height_ms=%.0f "
                     "peers=%d", height, commit.round, len(block.txs), executed.app_hash.hex()[:16],
                     took, interval, len(self.network.peers()))
            if self.on_commit is not None:
                self.on_commit(executed)
        assert self.wal is not None
        try:
            self.wal.end_height(height)
            self._maybe_rotate_wal(height)
        except OSError as exc:
            raise StorageFailure(f"marking height {height} stored in the consensus WAL",
                                 self.wal_path, height, exc) from exc
        following = chain.validators(height + 1)
        if following is None:
            raise RuntimeError(f"validator set of height {height + 1} is missing")
        return BlockExecuted(height, chain.app_hash if height == chain.height else
                             self._stored_app_hash(height), following)

    def _stored_app_hash(self, height: int) -> bytes:
        following = self.chain.block(height + 1)
        if following is None:
            return self.chain.app_hash
        return following.header.app_hash

    def _maybe_rotate_wal(self, height: int) -> None:
        """Start a fresh WAL (holding only the end-of-height marker) once the file is large."""
        assert self.wal is not None
        if self.wal_path.stat().st_size < WAL_ROTATE_BYTES:
            return
        self.wal.close()
        # atomic and durable, and a failed write (a full disk) leaves no part-written file
        replace_file(self.wal_path, encode_record(EndHeight(height)), temporary_suffix=".new")
        self.wal = WAL.open(self.wal_path)
        log.info("WAL rotated at height %d", height)

    # --- gossip -------------------------------------------------------------------------------

    def status(self) -> Status:
        s = self.state
        assert s is not None
        return Status(s.height, s.round, int(s.step))

    def _own_messages(self) -> list[Any]:
        assert self.state is not None
        return [self.status(), *core.gossip_messages(self.state)]

    async def _gossip_loop(self) -> None:
        last_height = 0
        while True:
            if self.state is not None and self.state.height == last_height:
                with trio.move_on_after(self.gossip_interval):
                    await self._new_height.wait()
            self._new_height = trio.Event()
            if self.state is None:
                continue
            if self.state.height != last_height:
                last_height = self.state.height
                await self._broadcast(self.status())  # a new height: tell peers at once
            else:
                for message in self._own_messages():
                    await self._broadcast(message)

    async def on_peer_connected(self, peer: str) -> None:
        await self.started.wait()
        try:
            for message in self._own_messages():
                await self.network.send(peer, CONSENSUS_PROTOCOL, self._wire(message))
        except PeerUnavailable:
            pass

    async def _forget_peer(self, peer: str) -> None:
        self.inbound.forget_peer(peer)
