"""End-to-end benchmark: a 4-validator local testnet loaded through RPC.

    python bench/e2e.py [--validators 4] [--seconds 20] [--rate 1000] [--dev]

Prints the figures and writes ``bench/results/e2e.json``:
- ``trades_per_s``: trades committed with code 0 per second while the nodes are saturated
  (pre-signed trades between funded accounts, JSON-RPC batches of broadcast_tx_sync spread over
  all nodes);
- ``latency_ms``: median and p99 from submit to commit (the NewBlock event carrying the tx,
  received over WebSocket) at a fixed offered load (``--rate`` txs/s);
- ``sig_limit_trades_per_s``: what signature verification alone allows on this machine in the same
  run: cores x verifies/s per core / validators / signatures per trade (3: two orders and the tx),
  since every validator verifies every signature once and all run on these cores;
- ``rpc_server_req_per_s``: the RPC server alone (fake node) answering ``health``.

``--dev`` runs one in-process DevNode instead of a testnet (no consensus: a load-generator check).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trio

from consensus.crypto import PrivateKey, verify
from consensus.hashing import sha256
from rpc.client import AsyncClient, RPCClientError, WebSocket
from rpc.demo import MARKET, demo_signer
from state import builders

SIGNATURES_PER_TRADE = 3
BATCH = 20
TRADERS = [f"short-{i}" for i in range(4)]


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


def make_trades(chain_id: str, fee: int, height: int, count: int, price: int, first_id: int) -> list[bytes]:
    """Pre-signed trades between the funded demo shorts, alternating sides (positions stay small)."""
    signers = [demo_signer(name) for name in TRADERS]
    venue = demo_signer("venue")
    trades = []
    for n in range(count):
        a, b = signers[n % 4], signers[(n + 1 + n // 4) % 4]
        if a is b:
            b = signers[(n + 2) % 4]
        buyer, seller = (a, b) if (n // 4) % 2 == 0 else (b, a)
        order_id = first_id + n
        bid = builders.build_order(buyer, chain_id, market=MARKET, side="buy", size=100, price=price,
                                   order_id=order_id, expiry=height + 900)
        ask = builders.build_order(seller, chain_id, market=MARKET, side="sell", size=100, price=price,
                                   order_id=order_id, expiry=height + 900)
        trades.append(builders.build_trade_tx(venue, chain_id, bid, ask, 100, price, fee=fee, expiry=height + 900))
    return trades


async def send_batches(client: AsyncClient, txs: list[bytes], sent: dict[bytes, float]) -> int:
    """Submit in JSON-RPC batches; returns how many check_tx accepted."""
    accepted = 0
    for start in range(0, len(txs), BATCH):
        chunk = txs[start:start + BATCH]
        body = [{"jsonrpc": "2.0", "id": i, "method": "broadcast_tx_sync",
                 "params": {"tx": base64.b64encode(tx).decode()}} for i, tx in enumerate(chunk)]
        now = time.monotonic()
        for tx in chunk:
            sent[sha256(tx)] = now
        replies = await client._post(json.dumps(body).encode())
        if isinstance(replies, list):
            accepted += sum(1 for r in replies if r.get("result", {}).get("code") == "0")
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


async def successful(client: AsyncClient, hashes: list[bytes]) -> int:
    ok = 0
    for tx_hash in hashes:
        try:
            record = await client.call("tx", hash=tx_hash.hex())
            ok += record["tx_result"]["code"] == "0"
        except RPCClientError:
            pass
    return ok


async def measure(urls: list[str], seconds: float, rate: int) -> dict[str, Any]:
    clients = [AsyncClient(url, max_connections=8, timeout=60) for url in urls]
    main = clients[0]
    status = await main.call("status")
    chain_id = status["node_info"]["network"]
    height = int(status["sync_info"]["latest_block_height"])
    fee = int((await main.call("genesis"))["genesis"]["app_state"]["min_tx_fee"])
    price = int((await main.call("market", market=MARKET))["oracle_price"])
    host, port = urls[0].removeprefix("http://").split(":")
    commits = Commits()
    results: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(commits.follow, host, int(port))

        # 1. throughput: more pre-signed trades than the chain can take, offered as fast as possible
        print("signing trades ...", flush=True)
        flood = make_trades(chain_id, fee, height, int(seconds * 3000), price, first_id=1)
        sent: dict[bytes, float] = {}
        start = time.monotonic()
        with trio.move_on_after(seconds):
            async with trio.open_nursery() as senders:
                per = len(flood) // (2 * len(clients)) + 1
                for k in range(2 * len(clients)):
                    senders.start_soon(send_batches, clients[k % len(clients)], flood[k * per:(k + 1) * per], sent)
        window_end = time.monotonic()
        await trio.sleep(3)  # let submitted txs land; only commits inside the window count
        in_window = [h for h, t in commits.committed.items() if h in sent and start <= t <= window_end]
        ok = await successful(main, in_window[:: max(1, len(in_window) // 300)])
        sample = len(in_window[:: max(1, len(in_window) // 300)]) or 1
        committed_ok = len(in_window) * ok / sample
        results["trades_per_s"] = round(committed_ok / (window_end - start), 1)
        results["trades_committed_in_window"] = len(in_window)
        results["trades_offered"] = len(sent)
        print(f"throughput: {results['trades_per_s']} trades/s committed ({len(in_window)} in {window_end - start:.1f} s)")
        await trio.sleep(5)  # drain the mempools before the latency run

        # 2. latency at a fixed offered load
        height = await main.latest_height()
        paced = make_trades(chain_id, fee, height, int(rate * min(seconds, 15)), price, first_id=10_000_000)
        sent_paced: dict[bytes, float] = {}
        interval = BATCH / rate
        t0 = time.monotonic()
        async with trio.open_nursery() as senders:
            for k, index in enumerate(range(0, len(paced), BATCH)):
                await trio.sleep_until(t0 + k * interval)
                senders.start_soon(send_batches, clients[k % len(clients)], paced[index:index + BATCH], sent_paced)
        await trio.sleep(5)
        latencies = sorted((commits.committed[h] - t) * 1000 for h, t in sent_paced.items() if h in commits.committed)
        nursery.cancel_scope.cancel()
    if latencies:
        results["latency_ms"] = {"median": round(statistics.median(latencies), 1),
                                 "p99": round(latencies[int(len(latencies) * 0.99) - 1], 1),
                                 "offered_txs_per_s": rate, "committed": len(latencies),
                                 "submitted": len(sent_paced)}
    else:
        results["latency_ms"] = {"median": None, "p99": None, "offered_txs_per_s": rate, "committed": 0}
    print(f"latency at {rate} txs/s: {results['latency_ms']}")
    for client in clients:
        await client.aclose()
    return results


async def rpc_server_rate(seconds: float = 3.0) -> float:
    from rpc.fake_node import FakeNode
    from rpc.server import RPCServer

    async with trio.open_nursery() as nursery:
        port = await nursery.start(RPCServer(FakeNode()).serve, "127.0.0.1", 0)
        client = AsyncClient(f"http://127.0.0.1:{port}", max_connections=8)
        count, end = 0, time.monotonic() + seconds

        async def worker() -> None:
            nonlocal count
            while time.monotonic() < end:
                await client.call("health")
                count += 1

        async with trio.open_nursery() as workers:
            for _ in range(8):
                workers.start_soon(worker)
        await client.aclose()
        nursery.cancel_scope.cancel()
    return count / seconds


def run_dev(seconds: float, rate: int) -> dict[str, Any]:
    from node.cli_init import default_genesis_path, validator_entry
    from rpc.demo import patch_genesis
    from rpc.dev_node import DevNode
    from rpc.server import RPCServer
    from state.genesis import parse_genesis

    async def main() -> dict[str, Any]:
        document = json.loads(default_genesis_path().read_text())
        key = PrivateKey(b"\x09" * 32)
        document["validators"] = [validator_entry(key, "dev")]
        document["genesis_time_ms"] = int(time.time() * 1000)
        node = DevNode(parse_genesis(patch_genesis(document)), key, block_interval=0.3)
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            port = await nursery.start(RPCServer(node).serve, "127.0.0.1", 0)
            result = await measure([f"http://127.0.0.1:{port}"], seconds, rate)
            nursery.cancel_scope.cancel()
        return result

    return trio.run(main)


def run_testnet(validators: int, seconds: float, rate: int) -> dict[str, Any]:
    from node.testnet import Monitor, Processes, create_testnet

    with tempfile.TemporaryDirectory(prefix="clearchain-bench-") as directory:
        base = 27100 + (os.getpid() % 200) * 10
        entries = create_testnet(Path(directory), validators, base, "clearchain-bench-1")
        processes = Processes(Path(directory), entries)
        processes.start()
        try:
            async def main() -> dict[str, Any]:
                monitor = Monitor(entries, processes, live=False)
                if not await monitor.wait_for_height(2, timeout=120):
                    raise SystemExit(f"testnet did not start; logs in {directory}/logs")
                await monitor.aclose()
                return await measure([e.rpc_url for e in entries], seconds, rate)

            return trio.run(main)
        finally:
            processes.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=int, default=1000, help="offered load for the latency run (txs/s)")
    parser.add_argument("--dev", action="store_true", help="one in-process DevNode instead of a testnet")
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    per_core = verifies_per_s()
    figures: dict[str, Any] = {
        "setup": "dev node (no consensus)" if args.dev else f"{args.validators}-validator testnet, one process each",
        "validators": 1 if args.dev else args.validators, "cores": cores,
    }
    figures.update(run_dev(args.seconds, args.rate) if args.dev else run_testnet(args.validators, args.seconds, args.rate))
    figures["sig_verify_per_s_per_core"] = round(per_core)
    figures["signatures_per_trade"] = SIGNATURES_PER_TRADE
    figures["sig_limit_trades_per_s"] = round(cores * per_core / figures["validators"] / SIGNATURES_PER_TRADE, 1)
    figures["rpc_server_req_per_s"] = round(trio.run(rpc_server_rate), 1)
    print(json.dumps(figures, indent=2))
    out = ROOT / "bench" / "results" / ("e2e_dev.json" if args.dev else "e2e.json")
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
