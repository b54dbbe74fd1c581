"""A local cluster of real node processes on 127.0.0.1 for the multi-process tests.

Each node is ``python -m cli start --home DIR`` with its own home, ports and log file;
the harness kills, stops and resumes them with real signals and reads their stores afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from primitives.crypto import PrivateKey, Signer
from node.init import (
    DEFAULT_VALIDATOR_POWER,
    default_genesis_path,
    init_home,
    write_genesis,
)
from node.config import Config, replace
from node.home import Home
from state.genesis import load_genesis, validator_entry
from node.p2p.identity import peer_multiaddr
from rpc.client import Client, ConnectionFailed, RPCClientError
from localnet.hosts import HostNet

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """``validators`` validator nodes plus ``full_nodes`` non-validators, all on loopback.

    ``p2p(i)`` gives node i p2p settings of its own; ``dial_port(i, j, port)`` the port node i
    dials to reach node j (listening on ``port``), as when each link goes through a proxy, and
    ``dial_host`` the address those proxies listen on. With ``net`` each node runs in its own
    network namespace (localnet/hosts.py, created by the caller) at its own address.
    """

    def __init__(self, root: Path, validators: int = 4, full_nodes: int = 0,
                 genesis_patch: Callable[[dict[str, Any]], None] | None = None,
                 p2p: Callable[[int], dict[str, Any]] | None = None,
                 dial_port: Callable[[int, int, int], int] | None = None,
                 net: HostNet | None = None, dial_host: str | None = None) -> None:
        self.root = root
        self.net = net
        self.hosts = [net.address(i) if net else "127.0.0.1" for i in range(validators + full_nodes)]
        self.repo = REPO
        self.size = validators + full_nodes
        self.validators = validators
        self.homes = [Home.at(root / f"node{i}") for i in range(self.size)]
        self.rpc_ports = [free_port() for _ in range(self.size)]
        self.p2p_ports = [free_port() for _ in range(self.size)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * self.size
        self.logs: list[Any] = [None] * self.size
        document = load_genesis(default_genesis_path()).to_dict()
        document["chain_id"] = "clearchain-test-1"
        document["genesis_time_ms"] = int(time.time() * 1000)
        # tests count many heights: an idle block every 50 ms, not the default's second
        document["consensus_params"]["timeouts"]["commit_ms"] = 50
        if genesis_patch is not None:
            genesis_patch(document)
        self.keys: list[PrivateKey] = []
        self.node_keys: list[PrivateKey] = []
        results = []
        for i, home in enumerate(self.homes):
            config = replace(Config(), node={"moniker": f"node{i}", "log_level": "info"},
                             p2p={"listen_address": f"/ip4/{self.hosts[i]}/tcp/{self.p2p_ports[i]}",
                                  "dial_backoff_max_ms": 1000, **(p2p(i) if p2p else {})},
                             rpc={"listen_address": f"{self.hosts[i]}:{self.rpc_ports[i]}"})
            result = init_home(home, moniker=f"node{i}", genesis=document, config=config)
            results.append(result)
            self.keys.append(result.validator_key)
            self.node_keys.append(result.node_key)
        document["validators"] = [validator_entry(f"node{i}", r.validator_key.public_key, DEFAULT_VALIDATOR_POWER)
                                  for i, r in enumerate(results[:validators])]
        self.chain_id = document["chain_id"]
        from node.config import load_config, save_config

        for i, result in enumerate(results):
            write_genesis(result.home, document)
            ports = {j: dial_port(i, j, self.p2p_ports[j]) if dial_port else self.p2p_ports[j]
                     for j in range(validators) if j != i}
            peers = tuple(peer_multiaddr(self.node_keys[j], dial_host if dial_port and dial_host else self.hosts[j],
                                         port) for j, port in ports.items())
            config = load_config(result.home.config_file)
            save_config(replace(config, p2p={"persistent_peers": peers}), result.home.config_file)

    # --- processes ------------------------------------------------------------------------

    def start(self, i: int) -> None:
        if self.logs[i] is None:
            self.logs[i] = open(self.root / f"node{i}.log", "ab")  # noqa: SIM115 - closed in close()
        env = dict(os.environ, PYTHONPATH=str(REPO))
        argv = [sys.executable, "-m", "cli", "start", "--home", str(self.homes[i].root)]
        self.procs[i] = subprocess.Popen(
            self.net.wrap(i, argv) if self.net else argv,
            stdout=self.logs[i], stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO, env=env)

    def start_all(self, count: int | None = None) -> None:
        for i in range(self.validators if count is None else count):
            self.start(i)

    def signal(self, i: int, signum: int) -> None:
        proc = self.procs[i]
        assert proc is not None
        proc.send_signal(signum)

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.procs[i] = None

    def stop(self, i: int, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code (a clean stop is 0)."""
        proc = self.procs[i]
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = -9
        self.procs[i] = None
        return code

    def close(self) -> None:
        for i in range(self.size):
            self.stop(i)
            if self.logs[i] is not None:
                self.logs[i].close()
                self.logs[i] = None

    def alive(self, i: int) -> bool:
        proc = self.procs[i]
        return proc is not None and proc.poll() is None

    def log_text(self, i: int) -> str:
        return (self.root / f"node{i}.log").read_text(errors="replace")

    # --- observing ------------------------------------------------------------------------

    def client(self, i: int) -> Client:
        return Client(f"http://{self.hosts[i]}:{self.rpc_ports[i]}", timeout=5)

    def height(self, i: int) -> int:
        try:
            with self.client(i) as client:
                return client.latest_height()
        except (ConnectionFailed, RPCClientError, OSError):
            return -1

    def heights(self, nodes: list[int] | None = None) -> list[int]:
        return [self.height(i) for i in (range(self.size) if nodes is None else nodes)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        tails = "\n".join(f"--- node{i} ---\n" + "\n".join(self.log_text(i).splitlines()[-15:])
                          for i in range(self.size) if (self.root / f"node{i}.log").exists())
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; heights "
                             f"{self.heights()}\n{tails}")

    def wait_height(self, nodes: list[int], height: int, timeout: float = 60.0) -> None:
        self.wait_for(lambda: min(self.heights(nodes)) >= height, timeout,
                      f"nodes {nodes} to reach height {height}")

    def signer(self, i: int) -> Signer:
        return Signer(self.keys[i])


@pytest.fixture(scope="module")
def cluster_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Cluster]]:
    made: list[Cluster] = []

    def make(**kwargs: Any) -> Cluster:
        cluster = Cluster(tmp_path_factory.mktemp("cluster"), **kwargs)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.close()
