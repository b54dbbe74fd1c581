"""Disk use of a 4-validator testnet: bytes per block idle and loaded, growth per day, with and
without block pruning.

    python bench/disk.py [--idle-seconds 30] [--load-seconds 45] [--rate 500] [--keep-blocks 20]

One testnet (``localnet.testnet.create_testnet``, default genesis: ``timeout_commit`` 1 s),
node0 and node1 keeping every block and state version, node2 and node3 with
``storage.keep_blocks`` and ``storage.keep_recent`` both ``--keep-blocks``. Phases:
idle (no txs at all: empty blocks at the idle pace), then loaded (a venue's ``fills`` txs at
``--rate`` trades/s through RPC, as bench/e2e.py offers them, and the validators' oracle reports
once a second). The nodes are stopped after each phase and every store's keys and values are
summed by kind (the bytes LevelDB holds for them, before its compression): block bodies,
commits, results, tx index, per-block metadata, validator sets and the state store.

Prints the figures and writes ``bench/results/disk.json``:
- ``idle`` / ``loaded``: blocks, blocks per second, stored bytes per block (node0, by kind);
- ``growth_per_day_bytes``: at the loaded pace, ``without_pruning`` (node0's bytes per block x
  blocks per day) and ``with_pruning`` (node2's: everything but the pruned kinds, whose total
  stays at ``keep_blocks`` blocks' worth, reported as ``pruned_kinds_bounded_at_bytes``);
- ``pruned_node_block_store_bytes``: node2's block bodies, commits, results and tx index at the
  end, against node0's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import trio

from localnet.testnet import Monitor, Processes, create_testnet
from node.config import load_config, save_config
from node.home import Home
from primitives.crypto import Signer
from client import AsyncClient

KINDS = {
    b"b/h": "blocks", b"b/c": "commits", b"b/x": "results", b"b/t": "tx_index",
    b"b/H": "block_hash_index", b"b/k": "block_hash_index", b"n/r": "block_meta",
    b"n/v": "validator_sets", b"s/": "state",
}
PRUNED = ("blocks", "commits", "results", "tx_index", "block_hash_index", "block_meta")
DAY_S = 86_400


def stored_bytes(store_dir: Path) -> dict[str, int]:
    """Bytes of keys and values in one node's LevelDB, by kind (the node must be stopped)."""
    import plyvel

    totals: dict[str, int] = {}
    if not store_dir.exists():
        return totals  # before the first start
    db = plyvel.DB(str(store_dir))
    try:
        for key, value in db.iterator():
            kind = next((name for prefix, name in KINDS.items() if key.startswith(prefix)), "other")
            totals[kind] = totals.get(kind, 0) + len(key) + len(value)
    finally:
        db.close()
    return totals


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(set(after) | set(before))}


class Testnet:
    def __init__(self, directory: Path, keep_blocks: int) -> None:
        base = 24000 + (os.getpid() % 150) * 16
        self.entries = create_testnet(directory, 4, base, "clearchain-disk-1")
        for i, entry in enumerate(self.entries):
            config_file = Home.at(entry.home).config_file
            config = load_config(config_file)
            # pruning: blocks (keep_blocks) and state versions (keep_recent) alike
            storage = replace(config.storage, keep_blocks=keep_blocks if i >= 2 else 0,
                              keep_recent=keep_blocks if i >= 2 else 0)
            save_config(replace(config, node=replace(config.node, log_level="warning"),
                                storage=storage), config_file)
        self.directory = directory
        self.processes: Processes | None = None

    def start(self) -> None:
        self.processes = Processes(self.directory, self.entries)
        self.processes.start()

    def stop(self) -> None:
        assert self.processes is not None
        self.processes.stop()

    def measure(self) -> list[dict[str, int]]:
        return [stored_bytes(Home.at(e.home).store_dir) for e in self.entries]

    async def wait_height(self, height: int) -> None:
        monitor = Monitor(self.entries, self.processes, live=False)
        try:
            if not await monitor.wait_for_height(height, timeout=120):
                raise SystemExit(f"testnet did not reach height {height}; logs in {self.directory}")
        finally:
            await monitor.aclose()

    async def height(self) -> int:
        async with AsyncClient(self.entries[0].rpc_url, timeout=10) as client:
            return await client.latest_height()


async def idle_phase(net: Testnet, seconds: float) -> tuple[int, float]:
    await net.wait_height(1)
    start, t0 = await net.height(), time.monotonic()
    await trio.sleep(seconds)
    return await net.height() - start, time.monotonic() - t0


async def loaded_phase(net: Testnet, seconds: float, rate: int) -> tuple[int, float, int]:
    from e2e import feed, make_load, offer
    from localnet.demo import MARKET

    await net.wait_height(1)
    clients = [AsyncClient(e.rpc_url, max_connections=8, timeout=60) for e in net.entries]
    main = clients[0]
    chain = await main.chain()
    chain_id, fee = chain.chain_id, chain.min_tx_fee
    price = (await main.market(MARKET)).oracle_price
    feeders = [Signer(Home.at(e.home).validator_key()) for e in net.entries]
    first_id = int.from_bytes(os.urandom(5), "big") << 16
    load = await trio.to_thread.run_sync(make_load, chain_id, fee, await main.latest_height(),
                                         int(rate * seconds), price, first_id, rate, 25)
    sent: dict[bytes, float] = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed, clients, feeders, chain_id, fee, price)
        await trio.sleep(2)  # a fresh oracle price first
        start, t0 = await main.latest_height(), time.monotonic()
        await offer(clients, load, sent)
        await trio.sleep(3)  # the last txs commit
        blocks, elapsed = await main.latest_height() - start, time.monotonic() - t0
        nursery.cancel_scope.cancel()
    for client in clients:
        await client.aclose()
    return blocks, elapsed, len(sent) * load.per_tx


def per_block(bytes_by_kind: dict[str, int], blocks: int) -> dict[str, int]:
    out = {k: round(v / max(1, blocks)) for k, v in bytes_by_kind.items() if v}
    out["total"] = round(sum(bytes_by_kind.values()) / max(1, blocks))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--load-seconds", type=float, default=45)
    parser.add_argument("--rate", type=int, default=500, help="offered trades/s while loaded")
    parser.add_argument("--keep-blocks", type=int, default=20,
                        help="storage.keep_blocks of node2 and node3 (node0 and node1 keep all)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "disk.json")
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="clearchain-disk-"))
    net = Testnet(directory, args.keep_blocks)
    try:
        start = net.measure()
        net.start()
        try:
            idle_blocks, idle_s = trio.run(idle_phase, net, args.idle_seconds)
        finally:
            net.stop()
        after_idle = net.measure()
        net.start()
        try:
            loaded_blocks, loaded_s, trades = trio.run(loaded_phase, net, args.load_seconds, args.rate)
        finally:
            net.stop()
        end = net.measure()
    finally:
        if not os.environ.get("CLEARCHAIN_BENCH_KEEP"):
            shutil.rmtree(directory, ignore_errors=True)

    idle = per_block(delta(after_idle[0], start[0]), idle_blocks)
    loaded_delta = delta(end[0], after_idle[0])
    loaded = per_block(loaded_delta, loaded_blocks)
    blocks_per_day = loaded_blocks / loaded_s * DAY_S
    pruned_delta = delta(end[2], after_idle[2])
    unpruned_kinds = {k: v for k, v in pruned_delta.items() if k not in PRUNED}
    kept = {k: v for k, v in end[2].items() if k in PRUNED}
    figures: dict[str, Any] = {
        "setup": "4-validator testnet on one machine; node0/1 keep every block, node2/3 "
                 f"storage.keep_blocks = keep_recent = {args.keep_blocks}",
        "idle": {"seconds": round(idle_s, 1), "blocks": idle_blocks,
                 "blocks_per_s": round(idle_blocks / idle_s, 2), "bytes_per_block": idle},
        "loaded": {"seconds": round(loaded_s, 1), "blocks": loaded_blocks, "offered_trades": trades,
                   "offered_trades_per_s": args.rate,
                   "blocks_per_s": round(loaded_blocks / loaded_s, 2), "bytes_per_block": loaded},
        "growth_per_day_bytes": {
            "blocks_per_day_loaded": round(blocks_per_day),
            "without_pruning": round(sum(loaded_delta.values()) / max(1, loaded_blocks) * blocks_per_day),
            "with_pruning": round(sum(unpruned_kinds.values()) / max(1, loaded_blocks) * blocks_per_day),
            "pruned_kinds_bounded_at_bytes": sum(kept.values()),
            "idle_without_pruning": round(idle["total"] * idle_blocks / idle_s * DAY_S),
        },
        "pruned_node_block_store_bytes": {
            "node0_keep_all": sum(v for k, v in end[0].items() if k in PRUNED),
            "node2_keep_blocks": sum(kept.values()),
        },
        "state_bytes_end": {"node0": end[0].get("state", 0), "node2": end[2].get("state", 0)},
    }
    print(json.dumps(figures, indent=2))
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
