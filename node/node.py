"""The node process: every part of a validator under one trio nursery.

::

    lock the home -> open the ONE LevelDB (block store + state store) -> init_chain if new
    nursery:
      p2p network (libp2p, Noise, persistent peers)      node.p2p.network
      RPC server (HTTP + WebSocket)                       rpc.server
      tx gossip and mempool recheck                       this module
      snapshots every N blocks, served to peers           node.snapshots
      block sync until no peer is ahead, then             node.blocksync
      consensus (WAL replay, then the core)               node.consensus_driver

Every committed block, from consensus or block sync, takes the same way out
(:meth:`Node.on_commit`): executed and stored by :class:`node.chain.Chain` (a consensus-decided
block in the :class:`node.execution.ExecutionGate`'s worker thread, while p2p and RPC go on),
then events to RPC subscribers, then the mempool drops the included txs and rechecks the rest.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import replace
from functools import partial

import trio

from consensus.core import RoundParams
from consensus.privval import FilePrivvalStore, PrivValidator
from node.api import NodeView
from node.blockstore import open_db
from node.blocksync import BlockSync
from node.chain import Chain, ExecutedBlock, is_empty
from node.config import Config, ConsensusSection, load_config
from node.consensus_driver import ConsensusDriver
from node.execution import ExecutionGate
from node import faults
from node.gcstats import GCStats
from node.home import Home
from node.mempool import Mempool, MempoolResult
from node.overload import LoadShedder, reported_height
from node.metrics import NodeMetrics, serve_metrics
from node.p2p.network import (
    BLOCKSYNC_PROTOCOL,
    CONSENSUS_PROTOCOL,
    MEMPOOL_PROTOCOL,
    Network,
)
from node.light_client import LightClient, RPCProvider
from node.snapshots import SNAPSHOT_PROTOCOL, SnapshotDir, Snapshots
from node.storage_failure import StorageFailure
from node.statesync import StateSync
from node.txgossip import TX_HASHES_PROTOCOL, TxGossip
from rpc.client import Client
from state.genesis import Genesis, load_genesis

log = logging.getLogger("clearchain.node")

GC_REPORT_EVERY = 60
"""Seconds between log lines on garbage-collector pauses."""
GC_THRESHOLDS = (20_000, 20, 20)
"""The cyclic collector's thresholds while the node runs (Python's default: 700, 10, 10).

A loaded validator allocates tx objects fast; with the default it collected 12-120 times per
10 s and a full pass over the long-lived heap paused the node for 100-220 ms, up to 4% of its
time. With these: 1-2 young collections per 10 s of 16-50 ms, no full pass during a benchmark,
validators' CPU per committed trade 2.53 -> 2.26 ms (bench/e2e.py, one run each)."""
PROTOCOLS = (CONSENSUS_PROTOCOL, MEMPOOL_PROTOCOL, TX_HASHES_PROTOCOL, BLOCKSYNC_PROTOCOL,
             SNAPSHOT_PROTOCOL)
"""What a node speaks. A peer must speak all of it: a session opens one stream per protocol."""
FULL_RECHECK_EVERY = 10
"""Blocks between rechecks of the whole mempool; in between only txs of touched accounts."""


def touched_accounts(executed: ExecutedBlock) -> set[bytes]:
    """Accounts a block may have changed: tx signers and every 20-byte value in its events."""
    touched = {r.sender for r in executed.results if r.sender}
    events = [*executed.begin_events, *executed.end.events]
    for result in executed.results:
        events.extend(result.events)
    for event in events:
        attrs = event.get("attrs") if isinstance(event, dict) else None
        for value in (attrs or {}).values():
            if isinstance(value, bytes) and len(value) == 20:
                touched.add(value)
    return touched


def consensus_params(genesis: Genesis, local: ConsensusSection) -> RoundParams:
    """The genesis timeouts and block limits, with the operator's non-zero overrides."""
    t = genesis.consensus_params.timeouts
    b = genesis.consensus_params.block

    def pick(override: int, value: int) -> int:
        return override if override > 0 else value

    return RoundParams(
        timeout_propose=pick(local.timeout_propose_ms, t.propose_ms),
        timeout_propose_delta=pick(local.timeout_propose_delta_ms, t.propose_delta_ms),
        timeout_prevote=pick(local.timeout_prevote_ms, t.prevote_ms),
        timeout_prevote_delta=pick(local.timeout_prevote_delta_ms, t.prevote_delta_ms),
        timeout_precommit=pick(local.timeout_precommit_ms, t.precommit_ms),
        timeout_precommit_delta=pick(local.timeout_precommit_delta_ms, t.precommit_delta_ms),
        timeout_commit=pick(local.timeout_commit_ms, t.commit_ms),
        block_max_bytes=b.max_bytes,
        block_max_txs=b.max_txs,
    )


class Node:
    def __init__(self, home: Home, config: Config | None = None) -> None:
        home.check_initialised()
        self.home = home
        self.config = config or load_config(home.config_file)
        self.genesis = load_genesis(home.genesis_file)
        self.node_key = home.node_key()
        self.validator_key = home.validator_key()
        self.validator_address = self.validator_key.address
        self.validator_public_key = self.validator_key.public_key
        self.catching_up = True
        self.rpc_port: int | None = None
        self.metrics_port: int | None = None
        self.metrics: NodeMetrics | None = NodeMetrics() if self.config.instrumentation.prometheus else None
        self._recheck_needed = trio.Event()
        self._touched: set[bytes] = set()
        self._admission = trio.Lock()
        self.gate = ExecutionGate()
        """Decided blocks execute in its worker thread; every reader of the app waits on it."""
        self._blocks_since_full_recheck = 0
        self.chain: Chain
        self.mempool: Mempool
        self.network: Network
        self.driver: ConsensusDriver
        self.blocksync: BlockSync
        self.snapshots: Snapshots
        self.statesync: StateSync | None = None
        self.view: NodeView

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; ``task_status.started()`` once p2p and RPC listen."""
        with self.home.lock():
            try:
                self.home.data_dir.mkdir(parents=True, exist_ok=True)
                db = open_db(str(self.home.store_dir))
            except OSError as exc:  # plyvel's IOError is one: LevelDB writes a log at open
                raise StorageFailure("opening the store", self.home.store_dir, None, exc) from exc
            try:
                await self._run(db, task_status)
            finally:
                db.close()

    async def _run(self, db: object, task_status: trio.TaskStatus[None]) -> None:
        config = self.config
        statesync = config.statesync
        self.network = network = Network(
            self.node_key, config.p2p,
            protocols=PROTOCOLS)
        snapshot_dir = self.home.data_dir / "snapshots"
        try:
            directory = SnapshotDir(snapshot_dir, statesync.snapshot_keep_recent)
        except OSError as exc:
            raise StorageFailure("creating", snapshot_dir, None, exc) from exc
        self.snapshots = Snapshots(directory, None, network, interval=statesync.snapshot_interval,
                                   chunk_bytes=statesync.chunk_bytes)
        async with trio.open_nursery() as nursery:
            network_running = False
            if statesync.enable and is_empty(db):
                # the chain opens on the restored state: p2p first, the chain's parts after
                await nursery.start(network.run)
                network_running = True
                clients = [Client(url, timeout=10) for url in statesync.rpc_servers]
                self.statesync = StateSync(db, network, self.snapshots,
                                           light=lambda: self._light_client(clients),
                                           keep_recent=config.storage.keep_recent,
                                           store_path=str(self.home.store_dir))
                try:
                    report = await self.statesync.run()
                finally:
                    for client in clients:
                        client.close()
                log.info("state sync: at height %d in %.1fs (%d chunks); block sync from here",
                         report.height, report.seconds, report.chunks)
            await self._run_chain(db, nursery, network_running, task_status)

    def _light_client(self, clients: list[Client]) -> LightClient:
        """The state-sync light client over ``statesync.rpc_servers`` (blocking: a thread)."""
        statesync = self.config.statesync
        providers = [RPCProvider(client.call_unverified, name=url)
                     for client, url in zip(clients, statesync.rpc_servers, strict=True)]
        return LightClient(providers[0], chain_id=self.genesis.chain_id,
                           trusted_height=statesync.trust_height,
                           trusted_hash=bytes.fromhex(statesync.trust_hash),
                           witnesses=providers[1:])

    async def _run_chain(self, db: object, nursery: trio.Nursery, network_running: bool,
                         task_status: trio.TaskStatus[None]) -> None:
        config, network = self.config, self.network
        store_path = str(self.home.store_dir)
        try:  # a new home writes the genesis state, validator sets and indexes here
            self.chain = chain = Chain(db, self.genesis, keep_recent=config.storage.keep_recent,
                                       keep_blocks=config.storage.keep_blocks,
                                       store_path=store_path)
        except OSError as exc:
            raise StorageFailure("opening the chain in", store_path, None, exc) from exc
        self.snapshots.store = chain.store
        self.mempool = Mempool(chain.app, config.mempool)
        privval = PrivValidator(self.validator_key, FilePrivvalStore(self.home.validator_state_file))
        params = consensus_params(self.genesis, config.consensus)
        self.driver = driver = ConsensusDriver(
            chain, network, self.mempool, privval, self.home.wal_dir / "wal", params,
            on_commit=self.on_commit, create_empty_blocks=config.consensus.create_empty_blocks,
            gate=self.gate)
        driver.equivocator = faults.install(config.fault_injection, blocks=chain.blocks,
                                            validator_key=self.validator_key, chain_id=chain.chain_id)
        self.shedder = LoadShedder(
            self.mempool, refuse_behind_blocks=config.mempool.refuse_behind_blocks,
            max_queue_ms=config.mempool.max_queue_ms,
            height=lambda: chain.height, peers_height=self._peers_height,
            block_ms=lambda: driver.last_commit_ms)
        self.view = NodeView(chain, self.mempool, network, config, validator_key=self.validator_key,
                             admit=self.admit, catching_up=lambda: self.catching_up,
                             round_state=lambda: driver.state,
                             shed=self.shedder.refusal, gate=self.gate)
        self.blocksync = BlockSync(chain, network, on_commit=self.on_commit,
                                   verifier=self.driver.verifier)
        self.gossip = TxGossip(self.mempool, network, self.admit)
        self.gossip.install()
        rpc_server = None
        if config.rpc.listen_address:
            from rpc.server import RPCServer

            limits = replace(config.rpc.limits, max_tx_bytes=config.mempool.max_tx_bytes)
            rpc_server = RPCServer(self.view, limits,
                                   observe=self.metrics.on_rpc if self.metrics else None)
        if self.metrics is not None:
            self._attach_metrics(self.metrics, rpc_server)
        log.info("node %s starting: chain %s at height %d, app hash %s, validator %s",
                 config.node.moniker, chain.chain_id, chain.height, chain.app_hash.hex()[:16],
                 self.validator_address.hex())
        if not network_running:
            await nursery.start(network.run)
        if rpc_server is not None:
            host, _, port = config.rpc.listen_address.rpartition(":")
            self.rpc_port = await nursery.start(rpc_server.serve, host, int(port))
        if self.metrics is not None:
            host, _, port = config.instrumentation.prometheus_listen_addr.rpartition(":")
            self.metrics_port = await nursery.start(
                partial(serve_metrics, self.metrics, host, int(port), ready=self.gate.idle))
        nursery.start_soon(self.gossip.run)
        await nursery.start(self.snapshots.run)
        nursery.start_soon(self._recheck_loop)
        nursery.start_soon(self._report_gc)
        task_status.started()
        await self.blocksync.sync(first_status_wait=3.0 if config.p2p.persistent_peers else 0.0)
        self.catching_up = False
        await nursery.start(self.driver.run)

    def _peers_height(self) -> int:
        """The committed height peers report: their consensus Status (it names the height a
        peer decides), or while block-syncing the heights they offer blocks up to."""
        reported = [s.height - 1 for s in self.driver.inbound.peer_status.values()]
        if not reported:
            reported = list(self.blocksync.peer_heights.values())
        return reported_height(reported, self.chain.height)

    def _attach_metrics(self, metrics: NodeMetrics, rpc_server: object | None) -> None:
        """Point the scrape-time gauges at the parts they read."""
        chain, mempool, network = self.chain, self.mempool, self.network
        metrics.app = chain.app
        chain.count_writes = True
        metrics.mempool_size.set_function(lambda: len(mempool))
        metrics.mempool_bytes.set_function(lambda: mempool.total_bytes)
        metrics.peers.set_function(lambda: len(network.peers()))
        metrics.network_counters = lambda: network.counters
        if rpc_server is not None:
            metrics.open_websockets.set_function(lambda: rpc_server.open_websockets)
        metrics.height.set(chain.height)

    # --- the way out of every committed block ------------------------------------------------

    def on_commit(self, executed: ExecutedBlock) -> None:
        self.snapshots.after_commit(executed.height)  # first: the view must be of this height
        if self.metrics is not None:
            chain = self.chain
            self.metrics.on_block(executed, round_=executed.commit.round,
                                  block_bytes=executed.block_bytes,
                                  last_validators=chain.validators(executed.height - 1),
                                  validators_of=chain.validators)
        self.view.publish(executed)
        mempool = self.mempool
        self.shedder.note_block([w for w in map(mempool.age, executed.tx_hashes) if w is not None])
        mempool.update(executed.block.txs)
        self._touched.update(touched_accounts(executed))
        self._blocks_since_full_recheck += 1
        if len(self.mempool):
            self._recheck_needed.set()

    async def _recheck_loop(self) -> None:
        """After commits: recheck the txs of accounts the blocks touched, and every
        ``FULL_RECHECK_EVERY`` blocks the whole mempool (expiry, parameter changes)."""
        while True:
            await self._recheck_needed.wait()
            self._recheck_needed = trio.Event()
            full = self._blocks_since_full_recheck >= FULL_RECHECK_EVERY
            accounts, self._touched = self._touched, set()
            if full:
                self._blocks_since_full_recheck = 0
            dropped = await self.mempool.recheck(None if full else accounts, pause=self.gate.idle)
            if dropped:
                log.debug("mempool recheck dropped %d txs", dropped)

    async def _report_gc(self) -> None:
        """Tune the cyclic garbage collector for a server heap and log its pauses once a minute."""
        previous = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        stats = GCStats()
        stats.install()
        try:
            while True:
                await trio.sleep(GC_REPORT_EVERY)
                collections, seconds, longest = stats.take()
                if sum(collections):
                    log.info("gc: %d collections (%d full) paused the node %.0f ms in the last "
                             "%d s, longest %.0f ms", sum(collections), collections[2],
                             sum(seconds) * 1000, GC_REPORT_EVERY, longest * 1000)
        finally:
            stats.remove()
            gc.set_threshold(*previous)  # in-process nodes (tests) leave the host as it was

    # --- tx admission ----------------------------------------------------------------------

    async def admit(self, tx: bytes, peer: str | None = None) -> MempoolResult:
        """check_tx one tx into the mempool, one at a time (a fair lock).

        Many RPC connections and gossip streams checking txs concurrently would each get a
        turn of the event loop before consensus gets its next one; through this lock at most
        one check runs per turn, so a flood of txs slows admission, never consensus.
        """
        async with self._admission:
            await self.gate.idle()  # never check against a block half executed
            result = self.mempool.check_tx(tx, peer=peer)
        if self.metrics is not None and not result.ok:
            self.metrics.on_rejected(result.code)
        return result
