"""Block sync: a node that is behind (or new) fetches committed blocks from peers in parallel.

Every node serves ``/clearchain/blocksync/1``: its height on request, and ranges of stored
blocks with their commit certificates as the raw bytes of its store (no re-encoding).

A syncing node asks every peer for its height, splits the missing range into windows, and keeps
several windows in flight at once, each from a different peer that has it. Blocks are applied
strictly in order: the commit of block h is verified against the validator set of h (which
this node derived itself from genesis and the blocks before h), the header against that set and
the block's contents, then the block is executed and stored like a consensus-decided one
(:meth:`node.chain.Chain.execute`, which halts on an app-hash mismatch). A peer whose data fails
these checks is disconnected and its window fetched from another. Sync ends when no peer is more
than one block ahead; consensus then takes over (and its catch-up covers the last block).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio
import trio.lowlevel

from consensus.blocks import InvalidBlockError, check_block_integrity
from primitives.codec import CodecError, decode
from consensus.commit import CommitError, verify_commit
from primitives.crypto import verify
from consensus.types import Block, Commit, MessageError
from node.chain import Chain, ExecutedBlock
from node.messages import (
    BadMessage,
    Blocks,
    GetBlocks,
    StatusRequest,
    SyncStatus,
    decode_sync,
    encode_sync,
)
from node.p2p.network import BLOCKSYNC_PROTOCOL, Network, PeerMisbehaviour, PeerUnavailable
from node.progress import Progress

log = logging.getLogger("clearchain.blocksync")

WINDOW = 32
"""Blocks per request."""
PROGRESS_EVERY_S = 2.0
"""Seconds between block sync progress lines (height, %, blocks/s, ETA) in the log."""
IN_FLIGHT = 6
"""Windows requested at once (spread over peers)."""
REQUEST_TIMEOUT = 10.0
RETRY_DELAY = 0.2
"""Pause before a window that came back empty is asked for again."""
MAX_PEER_FAILURES = 3
"""Unanswered window requests after which a peer claiming those blocks is dropped."""
MAX_RESPONSE_BLOCKS = 64
STALL_REPORT_S = 10.0
"""Seconds without an applied block after which block sync logs what it is waiting for."""


class BadBlock(Exception):
    """A block or commit from a peer that does not check out."""


@dataclass
class _Pending:
    peer: str
    event: trio.Event
    items: tuple[tuple[bytes, bytes], ...] | None = None


class BlockSync:
    def __init__(self, chain: Chain, network: Network, *,
                 on_commit: Callable[[ExecutedBlock], None] | None = None,
                 verifier: Callable[[bytes, bytes, bytes], bool] = verify) -> None:
        self.chain = chain
        self.network = network
        self.on_commit = on_commit
        self.verifier = verifier
        self.peer_heights: dict[str, int] = {}
        self.peer_bases: dict[str, int] = {}  # a pruning peer's earliest stored block
        self._status_changed = trio.Event()
        self._pending: dict[int, _Pending] = {}
        self._failures: dict[str, int] = {}  # peer -> window requests it failed in a row
        self._ids = itertools.count(1)
        self.syncing = False
        self.blocks_synced = 0
        self.txs_synced = 0
        self.last_fetch_seconds = 0.0
        network.set_handler(BLOCKSYNC_PROTOCOL, self.on_message)
        network.on_peer_connected(self._ask_status)
        network.on_peer_disconnected(self._forget)

    # --- serving ------------------------------------------------------------------------------

    async def on_message(self, peer: str, data: bytes) -> None:
        try:
            message = decode_sync(data, self.network.config.max_frame_bytes)
        except BadMessage as exc:
            raise PeerMisbehaviour(str(exc)) from exc
        if isinstance(message, StatusRequest):
            height = self.chain.height
            await self._send(peer, SyncStatus(self.chain.blocks.earliest_height() if height else 0, height))
        elif isinstance(message, SyncStatus):
            self.peer_heights[peer] = message.height
            self.peer_bases[peer] = message.base
            self._status_changed.set()
        elif isinstance(message, GetBlocks):
            await self._serve(peer, message)
        elif isinstance(message, Blocks):
            pending = self._pending.get(message.request_id)
            if pending is None or pending.peer != peer:
                return  # late answer to a request that timed out
            pending.items = message.items
            pending.event.set()

    async def _serve(self, peer: str, request: GetBlocks) -> None:
        count = min(request.count, MAX_RESPONSE_BLOCKS)
        budget = self.network.config.max_frame_bytes // 2
        items: list[tuple[bytes, bytes]] = []
        for height in range(request.first, request.first + count):
            block, commit = self.chain.blocks.block(height), self.chain.blocks.commit(height)
            if block is None or commit is None:
                break
            budget -= len(block) + len(commit) + 16
            if budget < 0 and items:
                break
            items.append((block, commit))
        await self._send(peer, Blocks(request.request_id, tuple(items)))

    async def _send(self, peer: str, message: object) -> None:
        try:
            await self.network.send(peer, BLOCKSYNC_PROTOCOL, encode_sync(message))  # type: ignore[arg-type]
        except PeerUnavailable:
            pass

    async def _ask_status(self, peer: str) -> None:
        await self._send(peer, StatusRequest())

    async def _forget(self, peer: str) -> None:
        self.peer_heights.pop(peer, None)
        self.peer_bases.pop(peer, None)
        self._failures.pop(peer, None)

    def _holders(self, start: int) -> list[str]:
        """Peers that still store block ``start`` (a pruning peer has deleted those below its base)."""
        return sorted(p for p, h in self.peer_heights.items()
                      if h >= start and self.peer_bases.get(p, 1) <= start)

    # --- syncing ------------------------------------------------------------------------------

    def target(self) -> int:
        return max(self.peer_heights.values(), default=0)

    async def sync(self, *, first_status_wait: float = 3.0) -> int:
        """Fetch and apply blocks until no peer is more than one block ahead; return the count."""
        self.syncing = True
        started, synced_before = time.monotonic(), self.blocks_synced
        try:
            with trio.move_on_after(first_status_wait):
                while not self.peer_heights:
                    for peer in self.network.peers():
                        await self._ask_status(peer)
                    with trio.move_on_after(0.25):
                        await self._status_changed.wait()
                    self._status_changed = trio.Event()
                await trio.sleep(0.3)  # let the other peers answer too
            if self.target() <= self.chain.height + 1:
                return 0
            log.info("block sync: at height %d, peers reach %d; fetching", self.chain.height, self.target())
            started = time.monotonic()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._refresh_status)
                await self._fetch_and_apply()
                nursery.cancel_scope.cancel()
        finally:
            self.syncing = False
        count = self.blocks_synced - synced_before
        elapsed = max(time.monotonic() - started, 1e-9)
        self.last_fetch_seconds = elapsed
        log.info("block sync done: %d blocks in %.1fs (%.0f blocks/s), now at height %d",
                 count, elapsed, count / elapsed, self.chain.height)
        return count

    async def _refresh_status(self) -> None:
        while True:
            await trio.sleep(1.0)
            for peer in self.network.peers():
                await self._ask_status(peer)

    async def _fetch_and_apply(self) -> None:
        # window start -> (peer, first height asked, blocks from that height on): a peer may
        # answer with fewer blocks than asked (its frame budget), and the rest of the window is
        # then asked for from the next missing height
        ready: dict[int, tuple[str, int, list[tuple[bytes, bytes]]]] = {}
        requested: dict[int, str] = {}  # window start -> peer
        arrived = trio.Event()
        peers_cycle = itertools.count()
        # windows count from where this sync starts (after a state-sync restore that is the
        # snapshot height + 1, which peers pruning below it still hold), not from height 1
        origin = self.chain.height + 1
        warned_pruned = 0
        started = last_report = last_applied = last_stall_report = time.monotonic()

        def window_of(height: int) -> int:
            return height - (height - origin) % WINDOW

        async def fetch(start: int, first: int, peer: str) -> None:
            nonlocal arrived
            items = await self._request(peer, first, start + WINDOW - first)
            if items:
                ready[start] = (peer, first, items)
                self._failures.pop(peer, None)
            else:
                self._served_nothing(peer, first, answered=items is not None)
                await trio.sleep(RETRY_DELAY)  # never a busy loop of requests
            requested.pop(start, None)
            arrived.set()

        async with trio.open_nursery() as nursery:
            while self.chain.height + 1 < self.target():
                next_height = self.chain.height + 1
                # launch windows from the next missing height on
                start = window_of(next_height)
                while len(requested) < IN_FLIGHT:
                    while start in ready or start in requested:
                        start += WINDOW
                    if start > self.target():
                        break
                    first = max(start, next_height)
                    candidates = self._holders(first)
                    if not candidates:
                        if first == next_height and warned_pruned != first:
                            warned_pruned = first
                            log.warning("block sync: no peer stores block %d any more (earliest "
                                        "blocks of peers: %s); waiting for a peer that does, or "
                                        "restart with state sync", first,
                                        sorted(self.peer_bases.values()))
                        break
                    peer = candidates[next(peers_cycle) % len(candidates)]
                    requested[start] = peer
                    nursery.start_soon(fetch, start, first, peer)
                    start += WINDOW
                window = window_of(next_height)
                entry = ready.get(window)
                if entry is None:
                    now = time.monotonic()
                    if now - max(last_applied, last_stall_report) >= STALL_REPORT_S:
                        last_stall_report = now
                        log.warning("block sync: no block applied for %.0fs at height %d (peers "
                                    "reach %d); waiting for windows %s; peer heights %s, bases %s",
                                    now - last_applied, self.chain.height, self.target(),
                                    {s: p[:12] for s, p in sorted(requested.items())},
                                    {p[:12]: h for p, h in sorted(self.peer_heights.items())},
                                    {p[:12]: b for p, b in sorted(self.peer_bases.items())})
                    arrived = trio.Event()
                    with trio.move_on_after(1.0):
                        await arrived.wait()
                    continue
                source, asked_from, items = entry
                offset = next_height - asked_from
                if offset >= len(items):
                    del ready[window]  # the peer sent fewer blocks than asked: ask for the rest
                    continue
                try:
                    self._apply(items[offset], items[offset + 1] if offset + 1 < len(items) else None)
                except BadBlock as exc:
                    del ready[window]
                    self.peer_heights.pop(source, None)
                    self.network.disconnect(source, f"sent a bad block {next_height}: {exc}")
                    continue
                last_applied = time.monotonic()
                if last_applied - last_report >= PROGRESS_EVERY_S:
                    last_report = last_applied
                    progress = Progress(next_height, self.target(), origin - 1, last_report - started)
                    log.info("%s", progress.describe("block sync: height", "blocks"))
                await trio.lowlevel.checkpoint()
            nursery.cancel_scope.cancel()

    async def _request(self, peer: str, start: int, count: int) -> list[tuple[bytes, bytes]] | None:
        request_id = next(self._ids)
        pending = _Pending(peer, trio.Event())
        self._pending[request_id] = pending
        try:
            await self.network.send(peer, BLOCKSYNC_PROTOCOL, encode_sync(GetBlocks(request_id, start, count)))
            with trio.move_on_after(REQUEST_TIMEOUT):
                await pending.event.wait()
        except PeerUnavailable:
            return None
        finally:
            del self._pending[request_id]
        if not pending.event.is_set():
            return None  # no answer in time
        return list(pending.items or ())

    def _served_nothing(self, peer: str, start: int, answered: bool) -> None:
        """A peer that claims height >= ``start`` but answers a window with no blocks (or not at
        all, repeatedly) is lying or broken: forget its height and drop it, or sync never ends."""
        if self.peer_heights.get(peer, 0) < start or self.peer_bases.get(peer, 1) > start:
            return
        failures = self._failures.get(peer, 0) + 1
        self._failures[peer] = failures
        if answered or failures >= MAX_PEER_FAILURES:
            self._failures.pop(peer, None)
            self.peer_heights.pop(peer, None)
            reason = "answered with no blocks" if answered else f"did not answer {failures} requests"
            self.network.disconnect(peer, f"claimed blocks from height {start} but {reason}")

    def _apply(self, item: tuple[bytes, bytes], _next: tuple[bytes, bytes] | None) -> None:
        """Verify one block and its commit against our own view of the chain, then execute."""
        chain = self.chain
        height = chain.height + 1
        try:
            block = Block.decode(item[0], max_bytes=len(item[0]))
            commit = Commit.from_obj(decode(item[1]))
        except (MessageError, CodecError, ValueError, TypeError) as exc:
            raise BadBlock(f"undecodable: {exc}") from exc
        header = block.header
        if block.height != height or header.chain_id != chain.chain_id:
            raise BadBlock(f"expected block {height} of {chain.chain_id}")
        validators = chain.validators(height)
        if validators is None:
            raise BadBlock(f"no validator set for height {height}")
        if header.validators_hash != validators.hash():
            raise BadBlock("validators_hash does not match our validator set")
        following = chain.validators(height + 1)
        if following is not None and header.next_validators_hash != following.hash():
            raise BadBlock("next_validators_hash does not match")
        if height > 1:
            previous = chain.blocks.latest()
            if previous is None or header.last_block_id is None or header.last_block_id.hash != previous.block_hash:
                raise BadBlock("last_block_id does not chain onto our latest block")
        try:
            check_block_integrity(block)
        except InvalidBlockError as exc:
            raise BadBlock(str(exc)) from exc
        try:
            verify_commit(chain.chain_id, validators, block.block_id(), height, commit, self.verifier)
        except CommitError as exc:
            raise BadBlock(f"commit does not verify: {exc}") from exc
        executed = chain.execute(block, commit)  # AppHashMismatch: halt, never skip
        self.blocks_synced += 1
        self.txs_synced += len(block.txs)
        if self.on_commit is not None:
            self.on_commit(executed)
