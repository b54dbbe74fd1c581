"""Attacks on a node's RPC while a probe checks that newcomers are still served (issue 20).

A one-validator node runs as its own process (so its RSS is its own) on 127.0.0.1; each attack
runs for a bounded time with a bounded number of connections (twice the pool it targets; half
the HTTP pool for the request flood), while
a probe opens a new connection every 100 ms for ``health`` or ``status`` (over a WebSocket every
other time during the WebSocket attack). Per attack: the probe's successes and latencies, the
node's RSS before, at its peak and after, and the blocks made.

Used by ``tests/localnet/test_abuse.py`` (short, small pools) and ``bench/rpc_abuse.py``.
Loopback only: every address here is 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
import wsproto
import wsproto.events

from primitives.crypto import PrivateKey, Signer
from node.config import Config, load_config, replace, save_config
from node.home import Home
from node.init import init_home
from rpc.client import WebSocket
from rpc.limits import Limits
from state.builders import build_transfer_tx

HOST = "127.0.0.1"
PROBE_EVERY_S = 0.1
PROBE_TIMEOUT_S = 5.0
"""A probe slower than this counts as failed (the issue asks p99 under 1 s)."""
SETTLE_S = 1.5
"""After an attack stops: the node closes what is left, then RSS "after" is read."""
REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# --- the node under attack ---------------------------------------------------------------------


@dataclass
class NodeProcess:
    """A one-validator node (``python -m cli start``) on loopback, with its RPC port."""

    home: Home
    port: int
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, root: Path, **rpc_limits: int) -> NodeProcess:
        home = Home.at(root)
        port = _free_port()
        rpc = {"listen_address": f"{HOST}:{port}", **rpc_limits}
        if home.config_file.exists():
            save_config(replace(load_config(home.config_file), rpc=rpc), home.config_file)
        else:
            config = replace(Config(), node={"log_level": "warning"},
                             p2p={"listen_address": f"/ip4/{HOST}/tcp/{_free_port()}"}, rpc=rpc)
            init_home(home, moniker="abused", config=config)
        log = open(root / "node.log", "ab")  # noqa: SIM115 - the process owns it until stop()
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "start", "--home", str(root)], cwd=REPO,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONPATH=str(REPO)))
        log.close()
        return cls(home, port, process)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def rss_mb(self) -> float:
        return rss_mb(self.process.pid)

    def signer(self) -> Signer:
        return Signer(self.home.validator_key())


# --- HTTP on raw streams (the attackers and the probe control every byte) ----------------------


async def http_call(port: int, method: str, timeout: float = PROBE_TIMEOUT_S) -> Any:
    """A new connection, one JSON-RPC call (``Connection: close``); the reply's ``result``."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method}).encode()
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream(HOST, port)
        async with stream:
            await stream.send_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                  b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            data = b""
            while chunk := await stream.receive_some(65536):
                data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace") or "no answer")
    return json.loads(payload)["result"]


async def ws_call(port: int, method: str, timeout: float = PROBE_TIMEOUT_S) -> Any:
    """A new WebSocket, one call, closed."""
    with trio.fail_after(timeout):
        async with await WebSocket.connect(HOST, port) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method}))
            text = await ws.receive()
    if text is None:
        raise ConnectionError("WebSocket closed before answering")
    return json.loads(text)["result"]


async def height(port: int) -> int:
    status = await http_call(port, "status", timeout=10)
    return int(status["sync_info"]["latest_block_height"])


async def _read_response(stream: trio.SocketStream) -> None:
    data = b""
    while b'"jsonrpc"' not in data or not data.endswith(b"}"):
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise trio.BrokenResourceError
        data += chunk


async def _dribble(stream: trio.SocketStream, data: bytes, stop_at: float) -> None:
    """One byte per 100 ms until sent, closed by the server, or the attack ends."""
    for index in range(len(data)):
        if trio.current_time() >= stop_at:
            return
        await stream.send_all(data[index:index + 1])
        await trio.sleep(0.1)
    await trio.sleep_until(stop_at)


_HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n"
_HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


# --- the attacks: one connection's behaviour each, repeated (reconnecting) until the end ------


async def header_dribbler(port: int, stop_at: float, context: dict[str, Any]) -> None:
    """Sends a request head one byte per 100 ms (slowloris)."""
    async with await trio.open_tcp_stream(HOST, port) as stream:
        await _dribble(stream, _HEAD, stop_at)


async def keepalive_dribbler(port: int, stop_at: float, context: dict[str, Any]) -> None:
    """One honest request, then the next one's head one byte per 100 ms."""
    async with await trio.open_tcp_stream(HOST, port) as stream:
        await stream.send_all(_HEALTH)
        await _read_response(stream)
        await _dribble(stream, _HEAD, stop_at)


async def body_dribbler(port: int, stop_at: float, context: dict[str, Any]) -> None:
    """A whole head announcing 10,000 bytes, then the body one byte per 100 ms."""
    async with await trio.open_tcp_stream(HOST, port) as stream:
        await stream.send_all(_HEAD.replace(b"Length: 40", b"Length: 10000"))
        await _dribble(stream, b" " * 10_000, stop_at)


async def idle_keepalive(port: int, stop_at: float, context: dict[str, Any]) -> None:
    """One request, then idle on the open connection."""
    async with await trio.open_tcp_stream(HOST, port) as stream:
        await stream.send_all(_HEALTH)
        await _read_response(stream)
        while await stream.receive_some(1024):  # until the server closes it or the attack ends
            pass


async def silent(port: int, stop_at: float, context: dict[str, Any]) -> None:
    """Connects and sends nothing."""
    async with await trio.open_tcp_stream(HOST, port) as stream:
        while await stream.receive_some(1024):
            pass


async def unread_websocket(port: int, stop_at: float, context: dict[str, Any]) -> None:
    """Upgrades, subscribes to every application event and every block, never reads again."""
    async with await trio.open_tcp_stream(HOST, port) as stream:
        ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        await stream.send_all(ws.send(wsproto.events.Request(host="x", target="/websocket")))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            data += chunk
        if not data.startswith(b"HTTP/1.1 101"):
            await trio.sleep(0.05)  # refused: try again shortly
            return
        ws.receive_data(data)
        list(ws.events())
        for number, query in enumerate(("tm.event='NewBlock'", "tm.event='Tx'", "tm.event='Clearing'")):
            await stream.send_all(ws.send(wsproto.events.TextMessage(data=json.dumps(
                {"jsonrpc": "2.0", "id": number, "method": "subscribe", "params": {"query": query}}))))
        await trio.sleep_until(stop_at)  # the server's pings and events pile up unread


async def commit_waiter(port: int, stop_at: float, context: dict[str, Any]) -> None:
    """broadcast_tx_commit of valid transfers, one after another, each waiting for its block."""
    txs: list[bytes] = context["txs"]
    while txs and trio.current_time() < stop_at:
        tx = txs.pop()
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "broadcast_tx_commit",
                           "params": {"tx": base64.b64encode(tx).decode()}}).encode()
        async with await trio.open_tcp_stream(HOST, port) as stream:
            await stream.send_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                                  % (len(body), body))
            await _read_response(stream)
    await trio.sleep_until(stop_at)


async def invalid_commit_flood(port: int, stop_at: float, context: dict[str, Any]) -> None:
    """broadcast_tx_commit of random bytes as fast as the node answers, on a keep-alive."""
    async with await trio.open_tcp_stream(HOST, port) as stream:
        while trio.current_time() < stop_at:
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "broadcast_tx_commit",
                               "params": {"tx": base64.b64encode(os.urandom(300)).decode()}}).encode()
            await stream.send_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                                  % (len(body), body))
            await _read_response(stream)


Behaviour = Callable[[int, float, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Attack:
    name: str
    behaviour: Behaviour
    pool: str
    """The limit whose pool it fills."""
    websocket_probe: bool = False
    factor: float = 2.0
    """Connections opened, as a multiple of that pool."""


ATTACKS = (
    Attack("header_dribble", header_dribbler, "max_open_connections"),
    Attack("keepalive_then_dribble", keepalive_dribbler, "max_open_connections"),
    Attack("body_dribble", body_dribbler, "max_open_connections"),
    Attack("idle_keepalive", idle_keepalive, "max_open_connections"),
    Attack("silent_connections", silent, "max_open_connections"),
    Attack("unread_websockets", unread_websocket, "max_websocket_clients", websocket_probe=True),
    Attack("commit_waiters", commit_waiter, "max_commit_waiters"),
    # a request flood within the pool (its point is memory and the chain, not slots): as many
    # connections again as the pool holds, all busy, only share the event loop with the probe
    Attack("invalid_commit_flood", invalid_commit_flood, "max_open_connections", factor=0.5),
)


# --- running them ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One attack's figures."""

    attack: str
    connections: int
    seconds: float
    probes: int = 0
    probe_failures: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_after_mb: float = 0.0
    height_before: int = 0
    height_after: int = 0

    @property
    def blocks(self) -> int:
        return self.height_after - self.height_before

    @property
    def success_rate(self) -> float:
        return (self.probes - len(self.probe_failures)) / self.probes if self.probes else 0.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "attack": self.attack, "connections": self.connections, "seconds": self.seconds,
            "probes": self.probes, "probe_success_rate": round(self.success_rate, 4),
            "probe_failures": self.probe_failures[:5],
            "probe_p50_ms": round(self.percentile_ms(0.5), 1),
            "probe_p99_ms": round(self.percentile_ms(0.99), 1),
            "rss_before_mb": round(self.rss_before_mb, 1), "rss_peak_mb": round(self.rss_peak_mb, 1),
            "rss_after_mb": round(self.rss_after_mb, 1), "blocks": self.blocks,
        }


async def _probe(port: int, outcome: Outcome, stop_at: float, websocket: bool) -> None:
    """A newcomer every 100 ms: ``health`` or ``status``, HTTP or (alternately) WebSocket."""
    async def one(index: int) -> None:
        method = "status" if index % 2 else "health"
        use_ws = websocket and index % 4 >= 2
        started = trio.current_time()
        try:
            await (ws_call if use_ws else http_call)(port, method)
        except Exception as exc:  # noqa: BLE001 - every failure is a finding, reported by kind
            outcome.probe_failures.append(f"{'ws' if use_ws else 'http'} {method}: {exc!r}"[:200])
        else:
            outcome.latencies_ms.append((trio.current_time() - started) * 1000)
        outcome.probes += 1

    async with trio.open_nursery() as nursery:
        index = 0
        next_at = trio.current_time()
        while next_at < stop_at:
            nursery.start_soon(one, index)
            index += 1
            next_at += PROBE_EVERY_S
            await trio.sleep_until(next_at)


async def _attacker(attack: Attack, port: int, stop_at: float, context: dict[str, Any]) -> None:
    """One attacking connection, reconnecting whenever the server ends it."""
    while trio.current_time() < stop_at:
        with trio.move_on_at(stop_at):
            try:
                await attack.behaviour(port, stop_at, context)
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                await trio.sleep(0.05)  # evicted or refused: come back, as an attacker would


async def _sample_rss(node: NodeProcess, outcome: Outcome, stop_at: float) -> None:
    while trio.current_time() < stop_at:
        outcome.rss_peak_mb = max(outcome.rss_peak_mb, node.rss_mb())
        await trio.sleep(0.2)


def signed_transfers(node: NodeProcess, chain_id: str, at_height: int, count: int) -> list[bytes]:
    signer = node.signer()
    to = PrivateKey(b"\x09" * 32).address
    return [build_transfer_tx(signer, chain_id, to, "USDC", 1, fee=1000, expiry=at_height + 900,
                              nonce=index) for index in range(count)]


async def run_attack(node: NodeProcess, attack: Attack, limits: Limits, seconds: float) -> Outcome:
    """One attack for ``seconds`` against a running node, with the probe and RSS sampling."""
    connections = max(1, int(attack.factor * getattr(limits, attack.pool)))
    outcome = Outcome(attack.name, connections, seconds)
    context: dict[str, Any] = {}
    if attack.behaviour is commit_waiter:
        status = await http_call(node.port, "status", timeout=10)
        at = int(status["sync_info"]["latest_block_height"])
        context["txs"] = signed_transfers(node, status["node_info"]["network"], at, 60 * connections)
    outcome.height_before = await height(node.port)
    outcome.rss_before_mb = outcome.rss_peak_mb = node.rss_mb()
    stop_at = trio.current_time() + seconds
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_sample_rss, node, outcome, stop_at)
        for _ in range(connections):
            nursery.start_soon(_attacker, attack, node.port, stop_at, context)
        await trio.sleep(0.3)  # the pool fills before the first probe
        await _probe(node.port, outcome, stop_at, attack.websocket_probe)
    outcome.height_after = await height(node.port)
    await trio.sleep(SETTLE_S)
    outcome.rss_after_mb = node.rss_mb()
    return outcome


async def wait_until_serving(port: int, timeout: float = 60.0) -> None:
    """Until the node answers ``status`` with a height above 0."""
    with trio.fail_after(timeout):
        while True:
            try:
                if await height(port) > 0:
                    return
            except (OSError, ConnectionError, trio.TooSlowError, KeyError, ValueError):
                pass
            await trio.sleep(0.2)


async def run_all(node: NodeProcess, limits: Limits, seconds: float,
                  attacks: tuple[Attack, ...] = ATTACKS,
                  report: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    await wait_until_serving(node.port)
    await trio.sleep(1.0)  # startup allocations settle before the first "before"
    outcomes = []
    for attack in attacks:
        outcome = await run_attack(node, attack, limits, seconds)
        outcomes.append(outcome)
        if report is not None:
            report(outcome)
    return outcomes
