"""State sync: an empty node restores a peer's snapshot, checked against headers a light client
verified, and then block-syncs from the snapshot's height (CometBFT's statesync reactor).

:meth:`StateSync.run`, before the node opens its chain (``statesync.enable`` on an empty home):

1. a light client (:mod:`node.light_client`) from the operator's ``trust_height`` and
   ``trust_hash`` over ``rpc_servers`` (the first is the primary, the others witnesses);
2. discovery: every connected peer is asked for its snapshots (:mod:`node.snapshots`) until
   some arrive; the newest height first, served by every peer that lists it;
3. the app hash after that height is verified (header h + 1); a peer offering a snapshot of
   that height with another root is lying: disconnected;
4. chunks are fetched round robin from the peers offering the same manifest, each checked by
   :class:`state.store.snapshot.Restorer`; a peer serving a bad chunk is disconnected and
   the next one asked for the same index;
5. the restored root must be the verified app hash (a manifest whose chunk hashes lie fails
   here: its peers are disconnected and the next snapshot tried); it is then written in ONE
   batch with the chain's base (:func:`node.chain.stage_restored_base`): the block store's
   latest height (the header's hash and commit, from the light client), the results hash of
   that height (header h + 1) and the validator sets of h, h + 1, h + 2 (verified headers).

The node then opens its chain at height h and block sync takes it from h + 1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from node.chain import open_state_store, stage_restored_base
from node.light_client import LightClient
from node.p2p.network import Network, PeerUnavailable
from node.snapshots import Snapshots
from node.storage_failure import StorageFailure
from state.store.snapshot import BadChunk, Manifest, RestoreFailed, Restorer, SnapshotError

log = logging.getLogger("clearchain.statesync")

DISCOVERY_S = 2.0
"""Seconds peers get to list their snapshots once the first list arrived."""
RETRY_S = 1.0
"""Pause between discovery rounds while no usable snapshot is offered."""


class StateSyncFailed(Exception):
    """No snapshot could be restored (the message says what was tried)."""


@dataclass
class StateSyncReport:
    height: int = 0
    app_hash: bytes = b""
    chunks: int = 0
    seconds: float = 0.0
    dropped_peers: list[str] = field(default_factory=list)
    """Peers disconnected for a lying snapshot (root, chunk or manifest)."""


class StateSync:
    def __init__(self, db: Any, network: Network, snapshots: Snapshots, *,
                 light: Callable[[], LightClient], keep_recent: int,
                 timeout_s: float = 600.0, store_path: str = "the node's store") -> None:
        self.db = db
        self.store_path = store_path
        """Where ``db`` lives, for the message of a failed write."""
        self.network = network
        self.snapshots = snapshots
        self.make_light = light
        """Builds the light client (blocking RPC: called in a thread)."""
        self.keep_recent = keep_recent
        self.timeout_s = timeout_s
        self.report = StateSyncReport()
        self._bad: set[str] = set()
        self._tried: set[bytes] = set()

    async def run(self) -> StateSyncReport:
        """Restore a snapshot and stage the chain's base; :class:`StateSyncFailed` on timeout."""
        started = time.monotonic()
        light = await trio.to_thread.run_sync(self.make_light)
        with trio.move_on_after(self.timeout_s):
            while True:
                offers = await self._discover()
                versions = {m.version for listed in offers.values() for m in listed}
                for version in sorted(versions, reverse=True):
                    if await self._try_height(light, version, offers):
                        self.report.seconds = time.monotonic() - started
                        return self.report
                await trio.sleep(RETRY_S)
        raise StateSyncFailed(f"no snapshot restored in {self.timeout_s:.0f}s; dropped peers "
                              f"{self.report.dropped_peers}")

    async def _discover(self) -> dict[str, list[Manifest]]:
        """The snapshots each connected peer offers (those not tried yet)."""
        offers: dict[str, list[Manifest]] = {}
        first: float | None = None
        while first is None or time.monotonic() - first < DISCOVERY_S:
            for peer in self.network.peers():
                if peer in offers or peer in self._bad:
                    continue
                try:
                    manifests = await self.snapshots.list_snapshots(peer, timeout=5.0)
                except PeerUnavailable:
                    continue
                usable = [m for m in manifests if m.hash() not in self._tried]
                if usable:
                    offers[peer] = usable
                    first = first or time.monotonic()
            await trio.sleep(0.2)
        log.info("state sync: snapshots offered: %s",
                 {p[-8:]: [m.version for m in listed] for p, listed in offers.items()})
        return offers

    def _drop(self, peer: str, reason: str) -> None:
        self._bad.add(peer)
        self.report.dropped_peers.append(peer)
        self.network.disconnect(peer, reason)

    async def _try_height(self, light: LightClient, version: int,
                          offers: dict[str, list[Manifest]]) -> bool:
        try:
            app_hash = await trio.to_thread.run_sync(light.app_hash_after, version, 30.0)
            blocks = {h: await trio.to_thread.run_sync(light.verify_height, h)
                      for h in (version, version + 1, version + 2)}
        except Exception as exc:  # the light client's named errors, RPC failures
            log.warning("state sync: cannot verify height %d: %r", version, exc)
            return False
        by_manifest: dict[bytes, tuple[Manifest, list[str]]] = {}
        for peer, manifest in ((p, m) for p, listed in offers.items() for m in listed):
            if manifest.version != version or peer in self._bad:
                continue
            if manifest.root != app_hash:
                self._drop(peer, f"offered a snapshot of height {version} with root "
                                 f"{manifest.root.hex()[:16]}, not the verified app hash")
                continue
            by_manifest.setdefault(manifest.hash(), (manifest, []))[1].append(peer)
        for key, (manifest, peers) in by_manifest.items():
            self._tried.add(key)
            if await self._restore(manifest, app_hash, peers, blocks):
                return True
        return False

    async def _restore(self, manifest: Manifest, app_hash: bytes, peers: list[str],
                       blocks: dict[int, Any]) -> bool:
        version = manifest.version
        restorer = Restorer(manifest, app_hash, open_state_store(self.db, self.keep_recent))
        alive = list(peers)
        turn = 0
        log.info("state sync: restoring height %d (%d chunks) from %d peers", version,
                 len(manifest.chunk_hashes), len(alive))
        while not restorer.done:
            if not alive:
                log.warning("state sync: no peer left to serve chunk %d of height %d",
                            restorer.next_index, version)
                return False
            peer = alive[turn % len(alive)]
            index = restorer.next_index
            try:
                chunk = await self.snapshots.fetch_chunk(peer, version, index)
            except PeerUnavailable:
                chunk = None
            if chunk is None:
                alive.remove(peer)
                continue
            try:
                await trio.to_thread.run_sync(restorer.apply, index, chunk)
            except BadChunk as exc:
                alive.remove(peer)
                self._drop(peer, f"sent a bad snapshot chunk: {exc}")
                continue
            turn += 1
        batch = self.db.write_batch(sync=True)
        try:
            await trio.to_thread.run_sync(restorer.finish, batch)
        except (RestoreFailed, SnapshotError) as exc:
            for peer in peers:
                if peer not in self._bad:
                    self._drop(peer, f"its snapshot of height {version} does not restore: {exc}")
            return False
        header, following = blocks[version].header, blocks[version + 1].header
        stage_restored_base(
            self.db, batch, header=header, commit=blocks[version].commit, app_hash=app_hash,
            results_hash=following.last_results_hash,
            validators={h: blocks[h].validators for h in blocks})
        try:
            batch.write()
        except OSError as exc:  # a full disk: the store stays empty, the node stops
            raise StorageFailure(f"writing the state restored at height {version} to",
                                 self.store_path, version, exc) from exc
        self.report.height, self.report.app_hash = version, app_hash
        self.report.chunks = len(manifest.chunk_hashes)
        log.info("state sync: restored height %d, app hash %s, %d keys", version,
                 app_hash.hex()[:16], restorer.keys)
        return True
