"""``clearchain testnet``: a local multi-validator chain in one command, optionally with demo load.

::

    DIR/
      testnet.json        name, home, RPC URL, p2p address and pid of every node (scripts read it)
      node0/ .. nodeN-1/  node homes (``clearchain init`` layout), one shared genesis
      keys/               the demo cast's keyring (``clearchain tx --keyring-dir DIR/keys``)
      logs/nodeI.log      each node's output

The first run writes the homes (distinct ports from ``--base-port``: p2p = base + 2i,
RPC = base + 2i + 1) and a genesis listing every validator and funding the demo cast; later
runs with the same DIR start the same homes, so the chain resumes where it stopped. Nodes run
as ``clearchain start --home nodeI`` child processes; Ctrl-C (or ``--duration``) stops them
with SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import trio

from primitives.crypto import Signer
from node.init import (
    DEFAULT_VALIDATOR_POWER,
    default_genesis_path,
    init_home,
    write_genesis,
)
from node.config import (
    DEFAULT_P2P_PORT,
    DEFAULT_PROMETHEUS_PORT,
    DEFAULT_RPC_PORT,
    Config,
    load_config,
    replace,
    save_config,
)
from node.home import Home
from state.genesis import load_genesis, validator_entry
from client import AsyncClient
from client.errors import ConnectionFailed, RPCClientError
from localnet import hosts
from localnet.hosts import HostNet
from localnet.demo import Demo, check_invariants, demo_names, demo_signer, patch_genesis, save_demo_keys

MANIFEST = "testnet.json"
HOSTS_FILE = "hosts.json"
"""Present when the nodes run in network namespaces: their count, name prefix and subnet."""
DEFAULT_BASE_PORT = 26600
STOP_GRACE_S = 15.0
TESTNET_SNAPSHOT_INTERVAL = 100
"""Blocks between state-sync snapshots on testnet nodes (one every ~100 s idle)."""


class TestnetError(click.ClickException):
    """A testnet that cannot be created or started; the message says why."""


@dataclass
class NodeEntry:
    name: str
    home: str
    rpc_url: str
    p2p_address: str
    pid: int | None = None
    metrics_url: str = ""
    """Prometheus endpoint (``http://127.0.0.1:<port>/metrics``); empty in older manifests."""


# --- creating the homes ---------------------------------------------------------------------------


def _port_free(port: int) -> bool:
    """Whether a node could listen on ``port`` now. The probe binds as the nodes' listeners do
    (trio and libp2p set SO_REUSEADDR), so the TIME-WAIT connections a testnet stopped a moment
    ago leave behind do not count as "in use"; a live listener still does."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class Placement:
    """Where one node listens and how the others reach it."""

    listen_host: str
    """The address the node binds (p2p, RPC, metrics)."""
    host: str
    """The address or name peers dial and clients use."""
    p2p_port: int
    rpc_port: int
    metrics_port: int


def loopback_placements(validators: int, base_port: int) -> list[Placement]:
    """Every node on 127.0.0.1 with ports of its own: p2p = base + 2i, RPC = base + 2i + 1,
    metrics = base + 2N + i."""
    return [Placement("127.0.0.1", "127.0.0.1", base_port + 2 * i, base_port + 2 * i + 1,
                      base_port + 2 * validators + i) for i in range(validators)]


def host_placements(hosts: list[str], listen_host: str | None = None) -> list[Placement]:
    """One node per host on the default ports, as on separate machines. ``listen_host`` None
    binds each node to its own address (namespaces); ``"0.0.0.0"`` to every interface."""
    return [Placement(listen_host or host, host, DEFAULT_P2P_PORT, DEFAULT_RPC_PORT, DEFAULT_PROMETHEUS_PORT)
            for host in hosts]


def _ip_or_dns(host: str) -> str:
    """The multiaddr protocol of a host: ``ip4`` for an IPv4 address, ``dns4`` for a name."""
    try:
        socket.inet_aton(host)
        return f"/ip4/{host}" if host.count(".") == 3 else f"/dns4/{host}"
    except OSError:
        return f"/dns4/{host}"


def create_testnet(directory: Path, validators: int, base_port: int, chain_id: str,
                   placements: list[Placement] | None = None,
                   on_home: Callable[[str], None] | None = None) -> list[NodeEntry]:
    """Write N homes, one genesis with every validator and the demo cast funded, and peers.

    Without ``placements`` the nodes share 127.0.0.1 (:func:`loopback_placements`, whose ports
    must be free here); with them each node gets its host's address (:func:`host_placements`).
    ``on_home(name)`` is called as each home (its keys) is written: the CLI's progress bar.
    """
    from node.p2p.identity import peer_id_of

    if placements is None:
        placements = loopback_placements(validators, base_port)
        ports = [port for p in placements for port in (p.p2p_port, p.rpc_port, p.metrics_port)]
        busy = [p for p in ports if not _port_free(p)]
        if busy:
            raise TestnetError(f"ports {busy} are in use; pick another --base-port")
    document = load_genesis(default_genesis_path()).to_dict()
    document["chain_id"] = chain_id
    document["genesis_time_ms"] = int(time.time() * 1000)
    patch_genesis(document)
    results, entries = [], []
    for i, place in enumerate(placements):
        name = f"node{i}"
        home = Home.at(directory / name)
        advertised = f"{_ip_or_dns(place.host)}/tcp/{place.p2p_port}"
        config = replace(Config(), node={"moniker": name},
                         p2p={"listen_address": f"/ip4/{place.listen_host}/tcp/{place.p2p_port}",
                              "external_address": advertised if place.listen_host != place.host else ""},
                         rpc={"listen_address": f"{place.listen_host}:{place.rpc_port}"},
                         consensus={"create_empty_blocks": True},
                         # ~0.7 s in a worker thread per 100k accounts (node/README.md)
                         statesync={"snapshot_interval": TESTNET_SNAPSHOT_INTERVAL},
                         instrumentation={"prometheus": True,
                                          "prometheus_listen_addr": f"{place.listen_host}:{place.metrics_port}"})
        results.append(init_home(home, moniker=name, genesis=document, add_self_as_validator=False, config=config))
        entries.append(NodeEntry(name, str(home.root), f"http://{place.host}:{place.rpc_port}",
                                 f"{advertised}/p2p/{peer_id_of(results[-1].node_key).to_base58()}",
                                 metrics_url=f"http://{place.host}:{place.metrics_port}/metrics"))
        if on_home is not None:
            on_home(name)
    document["validators"] = [validator_entry(f"node{i}", r.validator_key.public_key, DEFAULT_VALIDATOR_POWER)
                               for i, r in enumerate(results)]
    for i, result in enumerate(results):
        write_genesis(result.home, document)
        config = load_config(result.home.config_file)
        peers = tuple(e.p2p_address for j, e in enumerate(entries) if j != i)
        save_config(replace(config, p2p={"persistent_peers": peers}), result.home.config_file)
    save_demo_keys(directory / "keys")
    write_manifest(directory, entries)
    return entries


def write_manifest(directory: Path, entries: list[NodeEntry]) -> None:
    temporary = directory / (MANIFEST + ".tmp")
    temporary.write_text(json.dumps({"nodes": [asdict(e) for e in entries]}, indent=2) + "\n")
    os.replace(temporary, directory / MANIFEST)


def save_hosts(directory: Path, net: HostNet) -> None:
    """Record that this testnet's nodes live in namespaces (resumed runs make them again)."""
    (directory / HOSTS_FILE).write_text(json.dumps({"count": net.count, "prefix": net.prefix,
                                                   "subnet": net.subnet}) + "\n")


def load_hosts(directory: Path) -> HostNet | None:
    """The namespaced network of a testnet made with ``--hosts`` (None: a loopback testnet)."""
    path = directory / HOSTS_FILE
    if not path.exists():
        return None
    try:
        return HostNet(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise TestnetError(f"{path} is unreadable ({exc}); remove {directory} to start over") from exc


def read_manifest(directory: Path) -> list[NodeEntry]:
    try:
        document = json.loads((directory / MANIFEST).read_text())
        return [NodeEntry(**item) for item in document["nodes"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TestnetError(f"{directory / MANIFEST} is unreadable ({exc}); remove {directory} to start over") from exc


# --- running the nodes ------------------------------------------------------------------------------


class Processes:
    """The node child processes: started in their own sessions, stopped politely, then firmly."""

    def __init__(self, directory: Path, entries: list[NodeEntry], net: HostNet | None = None) -> None:
        self.directory = directory
        self.entries = entries
        self.net = net
        """Each node runs in its namespace of ``net`` (None: all on this host's loopback)."""
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Any] = []

    def start(self) -> None:
        (self.directory / "logs").mkdir(exist_ok=True)
        for entry in self.entries:
            log = open(self.directory / "logs" / f"{entry.name}.log", "ab")  # noqa: SIM115 - closed in stop()
            self.logs.append(log)
            argv = [sys.executable, "-m", "cli", "start", "--home", entry.home]
            index = len(self.procs)
            proc = subprocess.Popen(
                self.net.wrap(index, argv) if self.net is not None else argv,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
            self.procs.append(proc)
            entry.pid = proc.pid
        write_manifest(self.directory, self.entries)

    def exited(self) -> list[tuple[str, int]]:
        return [(e.name, p.returncode) for e, p in zip(self.entries, self.procs) if p.poll() is not None]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for entry, proc in zip(self.entries, self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                click.echo(f"{entry.name} did not stop within {STOP_GRACE_S:.0f} s; killing it", err=True)
                proc.kill()
                proc.wait()
            entry.pid = None
        for log in self.logs:
            log.close()
        write_manifest(self.directory, self.entries)


@dataclass
class NodeProgress:
    height: int = 0
    peers: int = 0
    mempool: int = 0
    app_hash: str = ""
    last_commit: float = 0.0
    error: str = ""


class Monitor:
    """Polls every node's RPC once a second and draws the progress table."""

    def __init__(self, entries: list[NodeEntry], processes: Processes | None, live: bool) -> None:
        self.entries = entries
        self.processes = processes
        self.clients = [AsyncClient(e.rpc_url, timeout=2, max_connections=2) for e in entries]
        self.views = [NodeProgress() for _ in entries]
        self.live = live
        self.txs_seen = 0
        self.samples: list[tuple[float, int]] = []
        self.counted_height = 0
        self._drawn = 0

    async def poll(self, index: int) -> None:
        client, view = self.clients[index], self.views[index]
        try:
            status = await client.status()
            block_time_ns = status.latest_block_time_ns
            view.last_commit = block_time_ns / 1e9 if block_time_ns else 0.0  # wall clock of the block
            view.height, view.app_hash = status.height, status.latest_app_hash.hex().upper()
            view.peers = len((await client.net_info()).peers)
            view.mempool = (await client.num_unconfirmed_txs()).n_txs
            view.error = ""
        except (RPCClientError, ConnectionFailed, KeyError, ValueError) as exc:
            view.error = str(exc)[:40] or type(exc).__name__

    async def count_txs(self) -> None:
        """Txs committed per second, from block headers' tx counts on the first live node."""
        top = max(v.height for v in self.views)
        source = next((c for c, v in zip(self.clients, self.views) if v.height == top and not v.error), None)
        if source is None or top <= self.counted_height:
            return
        low = max(self.counted_height + 1, top - 19)
        try:
            metas = (await source.blockchain(low, top)).block_metas
        except (RPCClientError, ConnectionFailed):
            return
        self.txs_seen += sum(m.num_txs for m in metas if m.header.height > self.counted_height)
        self.counted_height = top
        now = time.monotonic()
        self.samples = [(t, n) for t, n in self.samples if now - t <= 10] + [(now, self.txs_seen)]

    def txs_per_s(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self.samples[0], self.samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def table(self) -> list[str]:
        now = time.time()
        exited = dict(self.processes.exited()) if self.processes else {}
        lines = [f"{'node':<7} {'height':>7} {'peers':>5} {'mempool':>7} {'last commit':>11}  app hash / state",
                 "-" * 72]
        for entry, view in zip(self.entries, self.views):
            if entry.name in exited:
                state = f"EXITED (code {exited[entry.name]}), see logs/{entry.name}.log"
            else:
                state = view.error or (view.app_hash[:16] + "...")
            ago = f"{max(0.0, now - view.last_commit):.1f}s ago" if view.last_commit else "-"
            lines.append(f"{entry.name:<7} {view.height:>7} {view.peers:>5} {view.mempool:>7} {ago:>11}  {state}")
        lines.append(f"committed txs: {self.txs_seen}  ({self.txs_per_s():.0f} txs/s over the last 10 s)")
        return lines

    def draw(self) -> None:
        lines = self.table()
        if self.live:
            if self._drawn:
                sys.stdout.write(f"\x1b[{self._drawn}F\x1b[J")
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
            self._drawn = len(lines)
        else:
            click.echo(" | ".join(f"{e.name} h={v.height} p={v.peers}" for e, v in zip(self.entries, self.views))
                       + f" | {self.txs_per_s():.0f} txs/s")

    def forget_drawing(self) -> None:
        """Other output is about to be printed: the next draw starts below it."""
        self._drawn = 0

    async def run(self, every: float, draw: bool) -> None:
        last_draw = 0.0
        while True:
            async with trio.open_nursery() as nursery:
                for index in range(len(self.entries)):
                    nursery.start_soon(self.poll, index)
            await self.count_txs()
            if self.all_exited():
                self.draw()
                raise TestnetError("every node process has exited; see the logs")
            if draw and (self.live or time.monotonic() - last_draw >= 5):
                self.draw()
                last_draw = time.monotonic()
            await trio.sleep(every)

    def all_exited(self) -> bool:
        return self.processes is not None and len(self.processes.exited()) == len(self.entries)

    async def wait_for_height(self, height: int, timeout: float) -> bool:
        with trio.move_on_after(timeout):
            while not self.all_exited():
                async with trio.open_nursery() as nursery:
                    for index in range(len(self.entries)):
                        nursery.start_soon(self.poll, index)
                if min(v.height for v in self.views) >= height:
                    return True
                await trio.sleep(0.5)
        return False

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


async def same_app_hash(clients: list[AsyncClient]) -> tuple[int, dict[str, str]]:
    """The highest height every node has, and each node's block hash + app hash there."""
    heights = [await c.latest_height() for c in clients]
    common = min(heights)
    seen = {}
    for client in clients:
        block = await client.block(common)
        seen[client.url] = f"{block.block_id.hash.hex().upper()}/{block.header.app_hash.hex().upper()}"
    return common, seen


async def run_testnet(directory: Path, entries: list[NodeEntry], demo: bool, duration: float | None,
                      progress: bool, demo_seconds: float = 60.0, net: HostNet | None = None) -> int:
    """Start the nodes (each in its namespace of ``net``, made here and removed at the end),
    watch them, optionally drive the demo, and stop them on a signal or after ``duration``."""
    if net is not None:
        hosts.create(net)
    processes = Processes(directory, entries, net)
    live = progress and sys.stdout.isatty()
    monitor = Monitor(entries, processes, live)
    status = 0
    try:
        processes.start()
        click.echo(f"started {len(entries)} nodes; manifest {directory / MANIFEST}; logs in {directory / 'logs'}")
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def stop_on_signal() -> None:
                    async for signum in signals:
                        click.echo(f"\n{signal.Signals(signum).name}: stopping the testnet")
                        nursery.cancel_scope.cancel()

                nursery.start_soon(stop_on_signal)
                if duration is not None:
                    nursery.cancel_scope.deadline = trio.current_time() + duration
                if not await monitor.wait_for_height(1, timeout=90):
                    for name, code in processes.exited():
                        click.echo(f"{name} exited with code {code}; see {directory / 'logs' / name}.log", err=True)
                    click.echo("the nodes did not commit a first block; see the logs", err=True)
                    status = 1
                    nursery.cancel_scope.cancel()
                    return status
                if demo:
                    nursery.start_soon(monitor.run, 1.0, False)
                    status = await run_demo(entries, demo_seconds)
                    click.echo(monitor.table()[-1])
                    click.echo("demo finished; the testnet keeps running "
                               + ("until --duration ends" if duration else "(Ctrl-C stops it)"))
                    monitor.forget_drawing()
                    await monitor.run(1.0, True)
                else:
                    await monitor.run(1.0, True)
    finally:
        with trio.CancelScope(shield=True):
            await monitor.aclose()
            await trio.to_thread.run_sync(processes.stop)
            if net is not None:
                hosts.cleanup(net.prefix)
        click.echo("all nodes stopped; run the same command again to resume the chain")
    return status


async def run_demo(entries: list[NodeEntry], seconds: float) -> int:
    feeders = [Signer(Home.at(e.home).validator_key()) for e in entries]
    demo = Demo([e.rpc_url for e in entries], feeders, out=click.echo)
    try:
        stats = await demo.run(seconds)
        clients = demo.clients
        height, hashes = await same_app_hash(clients)
        agree = len(set(hashes.values())) == 1
        click.echo(f"height {height}: {'all nodes agree on block and app hash' if agree else 'NODES DISAGREE'}")
        if not agree:
            for url, value in hashes.items():
                click.echo(f"  {url}: {value}")
        addresses = [demo_signer(name).address for name in demo_names()] + [f.address for f in feeders]
        problems = await check_invariants(clients[0], addresses)
        click.echo("clearing invariants hold" if not problems else "INVARIANTS BROKEN: " + "; ".join(problems))
        ok = agree and not problems and stats.trades > 0
        return 0 if ok else 1
    finally:
        await demo.aclose()
