"""End-to-end benchmark: a 4-validator local testnet loaded through RPC.

    python bench/e2e.py [--validators 4] [--seconds 20] [--rate 1000] [--batch-ms 25] [--dev]

The load is a venue's: pre-signed pairs of orders between funded accounts, matched and sent as
``fills`` txs, each holding what the venue matched in ``--batch-ms`` (25 ms: 25 fills per tx at
1,000 trades/s, at most 128), one broadcast_tx_sync per tx spread over all nodes.
``--batch-ms 0`` sends one ``trade`` tx per trade instead (JSON-RPC batches of 20).

Prints the figures and writes ``bench/results/e2e.json``:
- ``trades_per_s``: the best rate of trades cleared (``trade`` events of committed txs) over a
  ramp of offered loads; ``ramp`` lists each step (offered, committed, blocks);
- ``steady_trades_per_s``: the best step's rate between the first and the last block carrying
  its trades, i.e. without the time a step takes to fill the pipeline and the last trades'
  commit latency (which ``trades_per_s`` counts: its 4-second steps make that ~10% of a step);
- ``latency_ms``: median and p99 from a trade's arrival at the venue to the commit of the tx
  carrying it (the NewBlock event, received over WebSocket) at a fixed offered load (``--rate``
  trades/s); a trade waits in the venue's batch up to ``--batch-ms``, and that wait is counted;
- ``sig_limit_trades_per_s``: what signature verification alone allows on this machine in the same
  run: cores x verifies/s per core / validators / signatures per trade (two orders, plus the tx's
  own signature shared by its fills), since every validator verifies every signature once and all
  run on these cores;
- ``rpc_server_req_per_s``: the RPC server alone (fake node) answering ``health``;
- ``load_generator_cpu_share`` (per ramp step): cores this benchmark's own process used while
  offering (sending, and following blocks over WebSocket), taken from the validators' two;
- ``validators_cpu_ms_per_trade``: CPU time of all validator processes per committed trade in
  the best ramp step, from its first submission to the commit of its last trade (Linux /proc,
  sampled every 0.2 s): what the code costs, whatever else the machine runs, so
  two versions can be compared even on a shared machine; ``cpu_limit_trades_per_s`` is
  cores x 1000 / that: the rate these cores allow if the validators had them to themselves.

``--overload SECONDS`` measures degradation past capacity instead of latency: the ramp finds
the peak committed rate, then the load doubles it (or is ``--overload-rate``) for SECONDS and
``overload`` reports what
the chain committed meanwhile (``committed_over_peak``: the goal is at least 0.75), how many
txs were admitted, refused for load (-32002, retry hint) or rejected otherwise, and the median
and p99 latency of the admitted trades only (a refused tx never waits in the chain); written to
``bench/results/overload.json``.
``--out FILE`` writes the JSON elsewhere (A/B runs); ``CLEARCHAIN_BENCH_KEEP=1`` keeps the
testnet directory (node logs: rounds, exec_ms per block) instead of deleting it.
``--dev`` runs one in-process DevNode instead of a testnet (no consensus: a load-generator check).
``--metrics-ab ROUNDS`` measures what Prometheus metrics cost: ROUNDS pairs of phases at
``--rate`` for ``--seconds``, a fresh testnet each, metrics off and on alternating (every node
scraped every second while on), and writes ``bench/results/metrics.json`` (medians, ratios).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trio

from primitives.crypto import PrivateKey, Signer, verify
from primitives.hashing import sha256
from client import AsyncClient, OracleReport, TxFailed, calls
from client.errors import ConnectionFailed, RPCClientError
from rpc.client import WebSocket
from localnet.demo import MARKET, load_fills, load_trades
from state.txs import MAX_FILLS

BATCH = 20  # trade txs per JSON-RPC batch when the venue does not batch fills


def verifies_per_s(seconds: float = 1.0) -> float:
    key = PrivateKey(b"\x05" * 32)
    message = b"m" * 200
    signature = key.sign(message)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            verify(key.public_key, message, signature)
        count += 200
    return count / (time.perf_counter() - start)


@dataclass
class Load:
    """Trades to offer at ``rate`` trades/s, ``per_tx`` to a tx (``single``: trade txs)."""

    txs: list[bytes]
    per_tx: int
    rate: float
    single: bool


def fills_per_tx(rate: float, batch_ms: int) -> int:
    """What a venue sending every ``batch_ms`` puts in one fills tx (0: one trade tx per trade)."""
    return 0 if batch_ms == 0 else max(1, min(MAX_FILLS, round(rate * batch_ms / 1000)))


def make_load(chain_id: str, fee: int, height: int, trades: int, price: int, first_id: int, rate: float,
              batch_ms: int) -> Load:
    """Pre-signed trades between the funded demo shorts (valid for 900 blocks from ``height``)."""
    per_tx = fills_per_tx(rate, batch_ms)
    if per_tx == 0:
        return Load(load_trades(chain_id, fee, height + 900, trades, price, first_id), 1, rate, True)
    trades = -(-trades // per_tx) * per_tx  # whole txs
    return Load(load_fills(chain_id, fee, height + 900, trades, price, first_id, per_tx), per_tx, rate, False)


REJECTED: dict[str, int] = {}
LOAD_REFUSED = -32002
"""The JSON-RPC error of a tx refused for load (mempool full, node behind), with a retry hint."""
REFUSED = "refused for load (-32002)"
NODE_PIDS: list[int] = []  # validator processes, for their CPU time (empty: not measured)


class CPUSamples:
    """The validators' CPU seconds sampled every 0.2 s, so the CPU of a window that ends at a
    commit seen over WebSocket can be read afterwards."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []

    async def run(self) -> None:
        while True:
            self.samples.append((time.monotonic(), nodes_cpu_s()))
            await trio.sleep(0.2)

    def at(self, when: float) -> float:
        """CPU seconds at the first sample at or after ``when`` (the last one if none)."""
        for t, cpu in self.samples:
            if t >= when:
                return cpu
        return self.samples[-1][1] if self.samples else 0.0


def nodes_cpu_s() -> float:
    """CPU seconds (user + system) the validator processes have used so far (Linux /proc)."""
    total = 0
    for pid in NODE_PIDS:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def send_batches(client: AsyncClient, txs: list[bytes], sent: dict[bytes, float],
                       admitted: set[bytes] | None = None) -> int:
    """Submit in JSON-RPC batches; returns how many check_tx accepted (rejections in REJECTED,
    the hashes of accepted txs in ``admitted`` if given)."""
    accepted = 0
    for start in range(0, len(txs), BATCH):
        chunk = txs[start:start + BATCH]
        now = time.monotonic()
        for tx in chunk:
            sent[sha256(tx)] = now
        try:
            answers = await client.batch([calls.broadcast_tx_sync(tx) for tx in chunk])
        except ConnectionFailed as exc:  # a node past its request deadline closes the connection
            REJECTED["connection failed"] = REJECTED.get("connection failed", 0) + len(chunk)
            print(f"send failed: {exc}", file=sys.stderr)
            continue
        except RPCClientError as exc:  # the whole batch refused
            REJECTED[str(exc)[:80]] = REJECTED.get(str(exc)[:80], 0) + len(chunk)
            continue
        for tx, answer in zip(chunk, answers):
            if isinstance(answer, RPCClientError):
                reason = REFUSED if answer.code == LOAD_REFUSED else str(answer)[:80]
            elif answer.code == 0:
                accepted += 1
                if admitted is not None:
                    admitted.add(sha256(tx))
                continue
            else:
                reason = f"{answer.code} {answer.log[:60]}"
            REJECTED[reason] = REJECTED.get(reason, 0) + 1
    return accepted


class Commits:
    """Commit times of tx hashes, from NewBlock events over WebSocket."""

    def __init__(self) -> None:
        self.committed: dict[bytes, float] = {}
        self.blocks: list[tuple[float, int, int]] = []  # (time, height, num txs)

    async def follow(self, host: str, port: int, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with await WebSocket.connect(host, port) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "subscribe",
                                      "params": {"query": "tm.event='NewBlock'"}}))
            await ws.receive()
            task_status.started()
            while (text := await ws.receive()) is not None:
                now = time.monotonic()
                message = json.loads(text)
                if "error" in message:
                    print("subscription error:", message["error"], file=sys.stderr)
                    return
                block = message["result"]["data"]["value"]["block"]
                txs = block["data"]["txs"]
                self.blocks.append((now, int(block["header"]["height"]), len(txs)))
                for tx in txs:
                    self.committed[sha256(base64.b64decode(tx))] = now
            print(f"NewBlock subscription closed ({ws.close_code} {ws.close_reason})", file=sys.stderr)


async def cleared(client: AsyncClient, hashes: list[bytes]) -> int:
    """Trades cleared by these committed txs (``trade`` events of txs with code 0)."""
    trades = 0
    for tx_hash in hashes:
        try:
            result = (await client.tx(tx_hash)).result
        except RPCClientError:
            continue
        if result.ok:
            trades += sum(event.type == "trade" for event in result.events)
    return trades


async def offer(clients: list[AsyncClient], load: Load, sent: dict[bytes, float],
                admitted: set[bytes] | None = None) -> None:
    """Offer ``load.txs`` at ``load.rate`` trades per second, one request per slot, spread over
    the nodes: a JSON-RPC batch of trade txs, or one fills tx as its batch window closes."""
    group = BATCH if load.single else 1
    interval = group * load.per_tx / load.rate
    t0 = trio.current_time()  # trio's clock, not time.monotonic(): they have different origins
    async with trio.open_nursery() as senders:
        for k, index in enumerate(range(0, len(load.txs), group)):
            await trio.sleep_until(t0 + (k + 1) * interval)
            senders.start_soon(send_batches, clients[k % len(clients)], load.txs[index:index + group],
                               sent, admitted)


def trade_latencies(load: Load, sent: dict[bytes, float], commits: "Commits") -> list[float]:
    """Milliseconds from each trade's arrival at the venue to its commit: the fills of a tx
    arrived evenly over the batch window that closed when it was sent."""
    spacing = 1 / load.rate
    latencies = []
    for tx_hash, sent_at in sent.items():
        committed = commits.committed.get(tx_hash)
        if committed is not None:
            latencies += [(committed - sent_at + j * spacing) * 1000 for j in range(load.per_tx)]
    return sorted(latencies)


async def drain(client: AsyncClient, limit: float = 60) -> None:
    """Wait until the mempool is empty (the previous phase's backlog must not leak into the next)."""
    with trio.move_on_after(limit):
        while (await client.num_unconfirmed_txs()).n_txs:
            await trio.sleep(1)


def steady_rate(times: list[float], trades_per_tx: float) -> float | None:
    """Trades per second committed between the first and the last block carrying a step's txs
    (the trades of the first block excluded, as the time before it is): the chain's rate with
    the pipeline full, without its fill and drain times. None with fewer than three blocks."""
    blocks = sorted(set(times))
    if len(blocks) < 3:
        return None
    after_first = sum(1 for t in times if t > blocks[0])
    return after_first * trades_per_tx / (blocks[-1] - blocks[0])


def committed_between(commits: Commits, sent: dict[bytes, float], start: float, end: float) -> list[bytes]:
    return [h for h, t in commits.committed.items() if h in sent and start <= t <= end]


async def feed(clients: list[AsyncClient], feeders: list[Signer], chain_id: str, fee: int, price: int) -> None:
    """The validators' oracle reports, once a second: a market without fresh prices is stale
    and accepts only risk-reducing trades."""
    while True:
        height = await clients[0].latest_height()
        report = OracleReport(prices={MARKET: price})
        for index, feeder in enumerate(feeders):
            tx = report.build(feeder, chain_id, fee=fee, expiry=height + 50)
            try:
                await clients[index % len(clients)].submit(tx, "sync")
            except (RPCClientError, TxFailed):
                pass
        await trio.sleep(1)


RAMP = (100, 200, 400, 800, 1600, 2400, 3200)


async def scrape_metrics(urls: list[str], every_s: float) -> None:
    """Read every node's /metrics every ``every_s`` (Prometheus scrapes every 15 s by default:
    this is pessimistic), so the metrics-on side of ``--metrics-ab`` pays for its scrapes."""
    import urllib.request

    def get(url: str) -> int:
        with urllib.request.urlopen(url, timeout=10) as response:
            return len(response.read())

    while True:
        for url in urls:
            await trio.to_thread.run_sync(get, url)
        await trio.sleep(every_s)


async def measure(urls: list[str], feeders: list[Signer], seconds: float, rate: int, batch_ms: int,
                  ramp: tuple[int, ...] = RAMP, *, latency: bool = True,
                  metrics_urls: tuple[str, ...] = (), overload_s: float = 0,
                  overload_rate: float = 0) -> dict[str, Any]:
    clients = [AsyncClient(url, max_connections=8, timeout=60) for url in urls]
    main = clients[0]
    chain = await main.chain()
    chain_id, fee = chain.chain_id, chain.min_tx_fee
    price = (await main.market(MARKET)).oracle_price
    host, port = urls[0].removeprefix("http://").split(":")
    step = max(4.0, seconds / len(ramp))
    first_id = int.from_bytes(os.urandom(5), "big") << 16  # order ids never repeat across runs

    async def load(trades: float, offered: float) -> Load:
        """Trades signed just before they are offered: empty blocks come every ~70 ms, so a load
        signed at the start would expire (900 blocks) before the last phase."""
        nonlocal first_id
        height = await main.latest_height()
        made = await trio.to_thread.run_sync(
            make_load, chain_id, fee, height, int(trades), price, first_id, offered, batch_ms)
        first_id += len(made.txs) * made.per_tx
        return made

    commits = Commits()
    cpu = CPUSamples()
    results: dict[str, Any] = {"fills_per_tx_at_rate": fills_per_tx(rate, batch_ms)}
    async with trio.open_nursery() as nursery:
        await nursery.start(commits.follow, host, int(port))
        nursery.start_soon(cpu.run)
        nursery.start_soon(feed, clients, feeders, chain_id, fee, price)
        if metrics_urls:
            nursery.start_soon(scrape_metrics, list(metrics_urls), 1.0)
        await trio.sleep(3)  # a fresh oracle price first

        # 1. throughput: a ramp of offered loads; the best committed rate counts
        ramp_results = []
        for offered in ramp:
            step_load = await load(offered * step, offered)
            sent_step: dict[bytes, float] = {}
            start, own_cpu = time.monotonic(), time.process_time()
            blocks_before = len(commits.blocks)
            await offer(clients, step_load, sent_step)
            end = time.monotonic()
            own_cpu = time.process_time() - own_cpu
            await trio.sleep(3)
            landed = committed_between(commits, sent_step, start, end + 3)
            sample = landed[:: max(1, len(landed) // 200)]
            ok_share = (await cleared(main, sample)) / (len(sample) * step_load.per_tx) if sample else 0
            trades = len(landed) * step_load.per_tx
            # over the time it took them to land: the offer window, or until the last one committed
            last = max((commits.committed[h] for h in landed), default=end)
            rate_ok = trades * ok_share / (max(end, last) - start)
            steady = steady_rate(sorted(commits.committed[h] for h in landed), step_load.per_tx * ok_share)
            new_blocks = len(commits.blocks) - blocks_before
            # all validators' CPU from the first submission to the commit of the last trade
            cpu_ms = ((cpu.at(max(end, last)) - cpu.at(start)) * 1000 / max(1, trades)
                      if NODE_PIDS else None)
            ramp_results.append({"offered_trades_per_s": offered, "fills_per_tx": step_load.per_tx,
                                 "committed_trades_per_s": round(rate_ok, 1),
                                 "steady_trades_per_s": None if steady is None else round(steady, 1),
                                 "committed": trades,
                                 "offered": len(sent_step) * step_load.per_tx, "blocks": new_blocks,
                                 "validators_cpu_ms_per_trade": None if cpu_ms is None else round(cpu_ms, 2),
                                 "load_generator_cpu_share": round(own_cpu / (end - start), 2)})
            cpu_text = "" if cpu_ms is None else f", validators' CPU {cpu_ms:.2f} ms per trade"
            steady_text = "" if steady is None else f", {steady:.0f} between its first and last block"
            print(f"offered {offered}/s: committed {rate_ok:.0f} trades/s{steady_text} ({trades}/{len(sent_step) * step_load.per_tx}, "
                  f"{new_blocks} blocks{cpu_text})", flush=True)
            await drain(main)
            if len(landed) < 0.8 * len(sent_step):
                break  # saturated (or stalled): higher offers only measure the backlog

        # 3. (instead of 2) past capacity: twice the peak for overload_s
        if overload_s:
            peak = max(r["committed_trades_per_s"] for r in ramp_results)
            results["overload"] = await overload_step(clients, commits, load, main, peak, overload_s,
                                                      overload_rate or 2 * peak)
            latency = False

        # 2. latency at a load the chain sustains, then at the fixed offered load asked for
        for name, trades, offered in ((("latency_ms_sustainable", ramp[0] * 10, ramp[0]),
                                       ("latency_ms", rate * seconds, rate)) if latency else ()):
            paced_load = await load(trades, offered)
            sent = {}
            await offer(clients, paced_load, sent)
            await trio.sleep(5)
            latencies = trade_latencies(paced_load, sent, commits)
            results[name] = {
                "median": round(statistics.median(latencies), 1) if latencies else None,
                "p99": percentile(latencies, 0.99),
                "offered_trades_per_s": paced_load.rate, "fills_per_tx": paced_load.per_tx,
                "submitted": len(sent) * paced_load.per_tx, "committed_within_5s_after": len(latencies)}
            print(f"{name} at {paced_load.rate} trades/s: {results[name]}", flush=True)
            await drain(main)
        nursery.cancel_scope.cancel()
    results["ramp"] = ramp_results
    results["trades_per_s"] = max(r["committed_trades_per_s"] for r in ramp_results)
    steady_rates = [r["steady_trades_per_s"] for r in ramp_results if r["steady_trades_per_s"] is not None]
    results["steady_trades_per_s"] = max(steady_rates, default=None)
    busiest = max(ramp_results, key=lambda r: r["committed_trades_per_s"])
    results["validators_cpu_ms_per_trade"] = busiest["validators_cpu_ms_per_trade"]
    if REJECTED:
        results["check_tx_rejections"] = dict(sorted(REJECTED.items(), key=lambda kv: -kv[1])[:5])
    for client in clients:
        await client.aclose()
    return results


def percentile(values: list[float], share: float) -> float | None:
    return round(values[max(0, int(len(values) * share) - 1)], 1) if values else None


async def overload_step(clients: list[AsyncClient], commits: Commits, load: Any, main: AsyncClient,
                        peak: float, seconds: float, offered: float) -> dict[str, Any]:
    """Offer ``offered`` trades/s (twice ``peak`` unless fixed) for ``seconds``; what committed
    meanwhile, and the latency of the admitted trades only. Txs are sent once each (no retries:
    a refused one is counted)."""
    offered = max(1.0, offered)
    step_load = await load(offered * seconds, offered)
    sent: dict[bytes, float] = {}
    admitted: set[bytes] = set()
    refused_before = REJECTED.get(REFUSED, 0)
    rejected_before = sum(REJECTED.values())
    start = time.monotonic()
    await offer(clients, step_load, sent, admitted)
    end = time.monotonic()
    await trio.sleep(5)  # the admitted backlog lands (its latency counts)
    landed = committed_between(commits, sent, start, end + 5)
    in_window = [h for h in landed if commits.committed[h] <= end]
    sample = landed[:: max(1, len(landed) // 200)]
    ok_share = (await cleared(main, sample)) / (len(sample) * step_load.per_tx) if sample else 0
    rate = len(in_window) * step_load.per_tx * ok_share / (end - start)
    latencies = trade_latencies(step_load, {h: sent[h] for h in admitted}, commits)
    refused = REJECTED.get(REFUSED, 0) - refused_before
    figures = {
        "offered_trades_per_s": round(offered, 1), "seconds": seconds, "fills_per_tx": step_load.per_tx,
        "peak_trades_per_s": peak, "committed_trades_per_s": round(rate, 1),
        "committed_over_peak": round(rate / peak, 3) if peak else None,
        "txs_sent": len(sent), "txs_admitted": len(admitted), "txs_refused_for_load": refused,
        "txs_rejected_otherwise": sum(REJECTED.values()) - rejected_before - refused,
        "admitted_committed_within_5s_after": sum(1 for h in admitted if h in commits.committed),
        "admitted_latency_ms": {"median": round(statistics.median(latencies), 1) if latencies else None,
                                "p99": percentile(latencies, 0.99)},
    }
    print(f"overload at {offered:.0f}/s (peak {peak:.0f}): {figures}", flush=True)
    await drain(main)
    return figures


async def rpc_server_rate(seconds: float = 3.0) -> float:
    from localnet.dev_node import DevNode, dev_genesis
    from rpc.server import RPCServer

    key = PrivateKey(b"\x09" * 32)
    async with trio.open_nursery() as nursery:  # `health` reads nothing of the node
        port = await nursery.start(RPCServer(DevNode(dev_genesis(key), key)).serve, "127.0.0.1", 0)
        client = AsyncClient(f"http://127.0.0.1:{port}", max_connections=8)
        count, end = 0, time.monotonic() + seconds

        async def worker() -> None:
            nonlocal count
            while time.monotonic() < end:
                await client.health()
                count += 1

        async with trio.open_nursery() as workers:
            for _ in range(8):
                workers.start_soon(worker)
        await client.aclose()
        nursery.cancel_scope.cancel()
    return count / seconds


def run_dev(seconds: float, rate: int, batch_ms: int) -> dict[str, Any]:
    from localnet.dev_node import DevNode, dev_genesis
    from rpc.server import RPCServer

    async def main() -> dict[str, Any]:
        key = PrivateKey(b"\x09" * 32)
        node = DevNode(dev_genesis(key, int(time.time() * 1000)), key, block_interval=0.3)
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            port = await nursery.start(RPCServer(node).serve, "127.0.0.1", 0)
            result = await measure([f"http://127.0.0.1:{port}"], [Signer(key)], seconds, rate, batch_ms)
            nursery.cancel_scope.cancel()
        return result

    return trio.run(main)


def run_testnet(validators: int, seconds: float, rate: int, batch_ms: int, ramp: tuple[int, ...],
                log_level: str, *, metrics: bool = True, latency: bool = True,
                base_port: int | None = None, overload_s: float = 0,
                overload_rate: float = 0, timeout_commit_ms: int = 0) -> dict[str, Any]:
    from dataclasses import replace

    from node.config import load_config, save_config
    from node.home import Home
    from localnet.testnet import Monitor, Processes, create_testnet

    directory = tempfile.mkdtemp(prefix="clearchain-bench-")
    if True:  # the directory is kept when the testnet fails, for its logs
        base = base_port or 27100 + (os.getpid() % 200) * 10
        entries = create_testnet(Path(directory), validators, base, "clearchain-bench-1")
        for entry in entries:
            config_file = Home.at(entry.home).config_file
            config = load_config(config_file)
            consensus = config.consensus
            if timeout_commit_ms:
                consensus = replace(consensus, timeout_commit_ms=timeout_commit_ms)
            save_config(replace(config, node=replace(config.node, log_level=log_level),
                                consensus=consensus,
                                instrumentation=replace(config.instrumentation,
                                                        prometheus=metrics)), config_file)
        processes = Processes(Path(directory), entries)
        processes.start()
        NODE_PIDS[:] = [proc.pid for proc in processes.procs]
        try:
            async def main() -> dict[str, Any]:
                monitor = Monitor(entries, processes, live=False)
                if not await monitor.wait_for_height(2, timeout=120):
                    log = (Path(directory) / "logs" / "node0.log").read_text()[-3000:]
                    raise SystemExit(f"testnet did not start; logs in {directory}/logs\n{log}")
                await monitor.aclose()
                feeders = [Signer(Home.at(e.home).validator_key()) for e in entries]
                return await measure([e.rpc_url for e in entries], feeders, seconds, rate, batch_ms,
                                     ramp, latency=latency,
                                     metrics_urls=tuple(e.metrics_url for e in entries if metrics),
                                     overload_s=overload_s, overload_rate=overload_rate)

            result = trio.run(main)
        finally:
            processes.stop()
        if os.environ.get("CLEARCHAIN_BENCH_KEEP"):
            print(f"kept {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
        return result


def run_metrics_ab(validators: int, seconds: float, rate: int, batch_ms: int, rounds: int,
                   log_level: str) -> dict[str, Any]:
    """Metrics off and on in one run, alternating (off, on, on, off, ...), a fresh testnet per
    phase at one offered load; the ratio of the medians is what metrics cost."""
    phases: list[dict[str, Any]] = []
    for round_ in range(rounds):
        for metrics in ((False, True) if round_ % 2 == 0 else (True, False)):
            # a port range per phase: the last phase's sockets may linger in TIME_WAIT
            base = 21000 + (len(phases) % 6) * 1000 + (os.getpid() % 80) * 12
            result = run_testnet(validators, seconds, rate, batch_ms, (rate,), log_level,
                                 metrics=metrics, latency=False, base_port=base)
            step = result["ramp"][0]
            phases.append({"metrics": metrics, "committed_trades_per_s": step["committed_trades_per_s"],
                           "validators_cpu_ms_per_trade": step["validators_cpu_ms_per_trade"]})
            print(f"metrics {'on ' if metrics else 'off'}: {phases[-1]}", flush=True)

    def median(metrics: bool, key: str) -> float:
        return statistics.median(p[key] for p in phases if p["metrics"] is metrics and p[key] is not None)

    figures: dict[str, Any] = {"offered_trades_per_s": rate, "seconds_per_phase": seconds,
                               "scrape_every_s": 1.0, "phases": phases}
    for key in ("committed_trades_per_s", "validators_cpu_ms_per_trade"):
        off, on = median(False, key), median(True, key)
        figures[key] = {"off": off, "on": on, "on_over_off": round(on / off, 4)}
    # CPU per trade is what bounds throughput on these cores (cpu_limit = cores x 1000 / it)
    figures["throughput_cost"] = round(1 - figures["validators_cpu_ms_per_trade"]["off"]
                                       / figures["validators_cpu_ms_per_trade"]["on"], 4)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=int, default=1000, help="offered load for the latency run (trades/s)")
    parser.add_argument("--batch-ms", type=int, default=25,
                        help="the venue sends what it matched every this many ms as one fills tx "
                             "(0: one trade tx per trade)")
    parser.add_argument("--ramp", default=",".join(map(str, RAMP)),
                        help="offered loads of the throughput ramp, trades/s, comma-separated")
    parser.add_argument("--log-level", default="info",
                        help="the nodes' log level (debug: every step change, timeout and proposal arrival)")
    parser.add_argument("--dev", action="store_true", help="one in-process DevNode instead of a testnet")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here instead")
    parser.add_argument("--metrics-ab", type=int, default=0, metavar="ROUNDS",
                        help="measure the cost of metrics: ROUNDS pairs of phases at --rate for "
                             "--seconds, metrics off and on alternating (bench/results/metrics.json)")
    parser.add_argument("--overload", type=float, default=0, metavar="SECONDS",
                        help="after the ramp, offer twice its peak for SECONDS instead of the "
                             "latency runs (bench/results/overload.json)")
    parser.add_argument("--overload-rate", type=float, default=0, metavar="TRADES_PER_S",
                        help="offer this instead of twice the ramp's peak (A/B runs: one load "
                             "for both sides)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the whole run on a fresh testnet this many times; the JSON "
                             "keeps the last run's figures and each round's throughput and overload")
    parser.add_argument("--timeout-commit-ms", type=int, default=0, metavar="MS",
                        help="override genesis's timeout_commit in every node's config.toml "
                             "(A/B of the idle pace against loaded latency; 0: genesis's value)")
    args = parser.parse_args()
    if args.metrics_ab:
        figures = run_metrics_ab(args.validators, args.seconds, args.rate, args.batch_ms,
                                 args.metrics_ab, args.log_level)
        print(json.dumps(figures, indent=2))
        out = args.out or ROOT / "bench" / "results" / "metrics.json"
        out.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {out}")
        return

    cores = os.cpu_count() or 1
    per_core = verifies_per_s()
    figures: dict[str, Any] = {
        "setup": "dev node (no consensus)" if args.dev else f"{args.validators}-validator testnet, one process each",
        "validators": 1 if args.dev else args.validators, "cores": cores,
    }
    figures["batch_ms"] = args.batch_ms
    ramp = tuple(int(offered) for offered in args.ramp.split(","))
    if args.dev:
        figures.update(run_dev(args.seconds, args.rate, args.batch_ms))
    else:
        runs = [run_testnet(args.validators, args.seconds, args.rate, args.batch_ms, ramp,
                            args.log_level, overload_s=args.overload, overload_rate=args.overload_rate,
                            timeout_commit_ms=args.timeout_commit_ms)
                for _ in range(max(1, args.rounds))]
        figures.update(runs[-1])
        if len(runs) > 1:  # each round a fresh testnet: the spread is the machine's noise
            figures["rounds"] = [{key: run[key] for key in ("trades_per_s", "overload") if key in run}
                                 for run in runs]
            if args.overload:
                ratios = [run["overload"]["committed_over_peak"] for run in runs]
                figures["committed_over_peak_by_round"] = ratios
                figures["committed_over_peak_min"] = min(ratios)
    # two order signatures per trade, plus the tx's own: shared by the fills of a batch
    per_tx = figures["fills_per_tx_at_rate"] or 1
    signatures = 2 + 1 / per_tx
    figures["sig_verify_per_s_per_core"] = round(per_core)
    figures["signatures_per_trade"] = round(signatures, 3)
    figures["sig_limit_trades_per_s"] = round(cores * per_core / figures["validators"] / signatures, 1)
    cpu_ms = figures.get("validators_cpu_ms_per_trade")
    if cpu_ms:  # what the validators' own CPU per trade allows on these cores
        figures["cpu_limit_trades_per_s"] = round(cores * 1000 / cpu_ms, 1)
    figures["rpc_server_req_per_s"] = round(trio.run(rpc_server_rate), 1)
    print(json.dumps(figures, indent=2))
    name = "e2e_dev.json" if args.dev else "overload.json" if args.overload else "e2e.json"
    out = args.out or ROOT / "bench" / "results" / name
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
