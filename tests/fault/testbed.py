"""The network the nemesis breaks: validators in their own network namespaces (localnet/hosts.py),
every p2p link through a userspace proxy (tests/node/linkproxy.py), clients sending transfers.

Node i dials node j at ``<gateway>:<port of link i->j>``; the proxy there forwards to node j's
own address, so one link can be refused, black-holed, delayed or made lossy while the others
flow. Without namespaces (not root, no ``ip``) the same cluster runs on 127.0.0.1 and a
"link down" becomes every link of the node refused at the proxy.
"""

from __future__ import annotations

import collections
import os
import random
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localnet import hosts
from localnet.demo import MARKET, demo_signer, load_fills, patch_genesis
from localnet.hosts import HostNet
from node.config import load_config, replace, save_config
from primitives.hashing import sha256
import trio

from primitives.crypto import Signer
from rpc.client import AsyncClient, Client, ConnectionFailed, RPCClientError, retry_hint_s
from state import builders
from tests.fault import disk
from tests.fault.checks import Ack
from tests.node.conftest import Cluster, free_port
from tests.node.linkproxy import LinkProxy

DISK_MB = 512
"""Each node's data directory is a tmpfs this big where mounting is allowed (root): room for a
30-minute run's store, and a full disk is one filler file away (tests/fault/disk.py)."""
COMMIT_MS = 250
"""The genesis commit timeout: idle blocks 4 a second, light enough for 4 nodes on 2 cores."""
MIN_FEE = 1000
"""genesis.json's ``min_tx_fee`` (per fee unit)."""
SENDERS = ("short-0", "short-1", "short-2", "short-3")
RECEIVERS = ("long-0", "long-1", "long-2", "long-3")


def _genesis(document: dict[str, Any]) -> None:
    patch_genesis(document)
    document["consensus_params"]["timeouts"]["commit_ms"] = COMMIT_MS


def transfer(chain_id: str, rng: random.Random, expiry: int) -> bytes:
    """One signed transfer of 1 micro-quote between demo accounts (a random nonce each)."""
    sender = demo_signer(rng.choice(SENDERS))
    to = demo_signer(rng.choice(RECEIVERS)).address
    return builders.build_transfer_tx(sender, chain_id, to, "USDC", 1, fee=MIN_FEE, expiry=expiry,
                                      nonce=rng.getrandbits(62))


class Testbed:
    """``validators`` nodes, namespaced when possible, a proxy per directed link."""

    def __init__(self, root: Path, validators: int = 4, seed: int = 0, namespaces: bool = True,
                 small_disks: bool = True) -> None:
        self.net: HostNet | None = None
        if namespaces and hosts.unavailable() is None:
            self.net = HostNet(validators, prefix=f"ccf{os.getpid() % 10000}", subnet=100 + os.getpid() % 100)
            hosts.create(self.net)
        gateway = self.net.gateway if self.net else "127.0.0.1"
        self.proxy = LinkProxy(host=gateway)
        ports = {(i, j): free_port() for i in range(validators) for j in range(validators) if i != j}
        self.cluster = Cluster(root, validators, genesis_patch=_genesis, net=self.net, dial_host=gateway,
                               dial_port=lambda i, j, _port: ports[(i, j)])
        for (i, j), port in ports.items():
            self.proxy.add(f"{i}->{j}", port, self.cluster.p2p_ports[j], self.cluster.hosts[j], seed=seed)
        self.proxy.start()
        self.size = validators
        self.chain_id = self.cluster.chain_id
        self.disks = small_disks and disk.available() is None
        """Whether every node's data directory is a small disk of its own (the disk-full fault)."""
        if self.disks:
            try:
                for home in self.cluster.homes:
                    disk.mount_small_disk(home.data_dir, DISK_MB)
            except disk.DiskFaultError:
                self._unmount()
                raise

    def start(self) -> None:
        self.cluster.start_all()
        self.cluster.wait_height(list(range(self.size)), 2, timeout=90)

    def close(self) -> None:
        self.cluster.close()
        self.proxy.close()
        self._unmount()  # the stores stay readable in the homes, for the checks
        if self.net is not None:
            hosts.cleanup(self.net.prefix)

    def _unmount(self) -> None:
        for home in self.cluster.homes:
            disk.unmount(home.data_dir)

    # --- faults' building blocks ---------------------------------------------------------------

    def links_between(self, a: set[int], b: set[int]) -> list[str]:
        return [f"{i}->{j}" for i in sorted(a) for j in sorted(b)] + [f"{j}->{i}" for i in sorted(a) for j in sorted(b)]

    def set_faults(self, i: int, **fields: Any) -> None:
        """Rewrite node i's ``[fault_injection]`` (every field not given back to its default)."""
        path = self.cluster.homes[i].config_file
        config = load_config(path)
        save_config(replace(config, fault_injection={"clock_offset_ms": 0, "fsync_delay_ms": 0,
                                                     "byzantine_double_sign_UNSAFE": False, **fields}), path)

    def wait_exit(self, i: int, timeout: float) -> int | None:
        """Node i's exit status once it has stopped by itself (None: still running at ``timeout``)."""
        proc = self.cluster.procs[i]
        if proc is None:
            return None
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def restart(self, i: int) -> None:
        self.cluster.stop(i)
        self.cluster.start(i)

    def rpc_url(self, i: int) -> str:
        return f"http://{self.cluster.hosts[i]}:{self.cluster.rpc_ports[i]}"

    def heights(self) -> list[int]:
        return self.cluster.heights(list(range(self.size)))

    def proposer_index(self, height: int) -> int | None:
        """The node that proposed block ``height`` (None: not known)."""
        for i in range(self.size):
            try:
                with self.cluster.client(i) as client:
                    header = client.call("block", height=height)["block"]["header"]
            except (ConnectionFailed, RPCClientError, OSError, KeyError):
                continue
            address = str(header["proposer_address"]).lower()
            for j, key in enumerate(self.cluster.keys):
                if key.address.hex() == address:
                    return j
        return None

    def validator_addresses(self, i: int) -> list[bytes]:
        with self.cluster.client(i) as client:
            answer = client.call("validators", per_page=100)
        return [bytes.fromhex(v["address"]) for v in answer["validators"]]


@dataclass
class Load:
    """Client threads sending transfers with ``broadcast_tx_commit`` to seeded random nodes,
    keeping every committed result as an :class:`Ack`."""

    bed: Testbed
    seed: int
    clients: int = 2
    pause_s: float = 0.2
    acks: list[Ack] = field(default_factory=list)
    sent: int = 0
    failed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for k in range(self.clients):
            thread = threading.Thread(target=self._run, args=(random.Random(f"{self.seed}/load/{k}"),),
                                      name=f"load-{k}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self, rng: random.Random) -> None:
        bed = self.bed
        while not self._stop.is_set():
            i = rng.randrange(bed.size)
            try:
                with Client(bed.rpc_url(i), timeout=15) as client:
                    height = client.latest_height()
                    tx = transfer(bed.chain_id, rng, height + 300)
                    with self._lock:
                        self.sent += 1
                    answer = client.broadcast_tx_commit(tx)
                if int(answer.get("height", "0")) > 0 and answer.get("tx_result") is not None:
                    with self._lock:
                        self.acks.append(Ack(sha256(tx), int(answer["height"]),
                                             int(answer["tx_result"].get("code", 0)), f"node{i}"))
            except (ConnectionFailed, RPCClientError, OSError, ValueError, KeyError):
                with self._lock:
                    self.failed += 1
            self._stop.wait(self.pause_s)


BURST_FILLS = 25
"""Trades per burst tx: a venue's fills batch, 2 order signatures per trade for every validator to check."""
BURST_TXS_PER_S = 300
"""Pre-signed txs per second of hold (refused ones are offered again): 7,500 trades/s on offer, several times what 4 validators
on 2 cores clear (~1,600-2,200 trades/s, bench/results/e2e.json), so admission control must act."""


def burst(bed: Testbed, node: int, clients: int, seconds: float, seed: int) -> dict[str, int]:
    """``clients`` concurrent clients posting pre-signed fills txs to every node (``node`` first)
    as fast as the nodes answer, for ``seconds``, never retrying a refusal: a burst far past
    capacity (one node's check_tx alone about keeps up with the chain). Returns what
    the node did with them: admitted, refused for load (-32002 with a retry hint: admission
    control at work), rejected by check_tx, failed (no answer), and the trades on offer per second.

    The validators first report a fresh oracle price (a stale market takes only risk-reducing
    trades, which would turn the burst into cheap rejections)."""
    return trio.run(_burst, bed, node, clients, seconds, seed)


async def _burst(bed: Testbed, node: int, clients: int, seconds: float, seed: int) -> dict[str, int]:
    counts = {"admitted": 0, "refused_for_load": 0, "rejected": 0, "failed": 0}
    order = [(node + k) % bed.size for k in range(bed.size)]
    pools = [AsyncClient(bed.rpc_url(i), timeout=10, max_connections=clients, overload_retries=0) for i in order]
    try:
        price = await _fresh_oracle_price(bed, pools[0])
        height = await pools[0].latest_height()
        txs = load_fills(bed.chain_id, MIN_FEE, height + 300, int(seconds * BURST_TXS_PER_S) * BURST_FILLS,
                         price, first_id=1 + (seed * 1_000_003 + height) % 2**40, per_tx=BURST_FILLS)
        queue = collections.deque(txs)
        end = time.monotonic() + seconds

        async def sender(client: AsyncClient) -> None:
            while queue and time.monotonic() < end:
                tx = queue.popleft()
                try:
                    answer = await client.broadcast_tx_sync(tx)
                    counts["admitted" if int(answer.get("code", 0)) == 0 else "rejected"] += 1
                except RPCClientError as exc:
                    if retry_hint_s(exc) is None:
                        counts["failed"] += 1
                    else:  # never admitted, so still fresh: offered again at once, hint ignored
                        counts["refused_for_load"] += 1
                        queue.append(tx)
                except (ConnectionFailed, OSError, ValueError):
                    counts["failed"] += 1
                    await trio.sleep(0.05)

        async with trio.open_nursery() as nursery:
            for k in range(clients):
                nursery.start_soon(sender, pools[k % len(pools)])
    finally:
        for pool in pools:
            await pool.aclose()
    offered = counts["admitted"] + counts["refused_for_load"] + counts["rejected"]
    counts["offered_trades_per_s"] = round(offered * BURST_FILLS / seconds)
    return counts


async def _fresh_oracle_price(bed: Testbed, client: AsyncClient) -> int:
    """Every validator reports the market's last price; waits (bounded) until it is active again."""
    market = await client.call("market", market=MARKET)
    price = int(market["oracle_price"])
    height = await client.latest_height()
    for key in bed.cluster.keys:
        tx = builders.build_oracle_tx(Signer(key), bed.chain_id, {MARKET: price}, fee=MIN_FEE, expiry=height + 50)
        try:
            await client.broadcast_tx_sync(tx)
        except (RPCClientError, ConnectionFailed, OSError):
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (await client.call("market", market=MARKET)).get("status") == "active":
            break
        await trio.sleep(0.25)
    return price
