"""State sync against block sync, on the same chain: ``--blocks`` blocks of ``--txs`` transfers,
each to a new account (5,000 x 20: a state of 100k accounts made by txs).

Builds the source chain on LevelDB (4 validators, every block signed by all four) and takes a
snapshot of its state two blocks before the tip (``node.snapshots.SnapshotDir``: chunks cut
from a read-only view). Then, over libp2p between two hosts in this process (Noise, yamux,
127.0.0.1), two fresh nodes reach the tip:

- block sync: an empty home fetches every block, verifies each commit against the validator
  set, executes every tx and stores each block in one synced batch (``node.blocksync``);
- state sync: an empty home runs ``node.statesync.StateSync`` (discovery, manifest root against
  the verified app hash, every chunk fetched and checked, the restored root compared, the
  chain's base written), opens the chain on the restored state and block-syncs the last blocks.
  The light client is replaced by the source's own headers (it costs a few RPC round trips).

Both hosts share one process (and so one core): figures are lower bounds for a node with its
own process. Each fresh node must end at the source's app hash.

    .venv/bin/python bench/sync.py [--blocks 5000] [--txs 20]

Prints the figures and writes ``bench/results/sync.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consensus.light import LightBlock
from localnet.synthetic import append_block
from node.blockstore import open_db
from node.blocksync import BlockSync
from node.chain import Chain
from node.config import P2PSection
from node.init import DEFAULT_VALIDATOR_POWER, default_genesis_path
from node.p2p.network import BLOCKSYNC_PROTOCOL, Network
from node.snapshots import SNAPSHOT_PROTOCOL, SnapshotDir, Snapshots, TakenSnapshot
from node.statesync import StateSync
from primitives.crypto import PrivateKey, Signer, format_address
from state.builders import build_transfer_tx
from state.genesis import load_genesis, parse_genesis, validator_entry

VALIDATORS = [PrivateKey(bytes([0x10 + i]) * 32) for i in range(4)]
SENDERS = [Signer(PrivateKey(bytes([0x40 + i]) * 32)) for i in range(64)]
T0 = 1_800_000_000_000
PROTOCOLS = (BLOCKSYNC_PROTOCOL, SNAPSHOT_PROTOCOL)


def make_genesis():  # type: ignore[no-untyped-def]
    document = load_genesis(default_genesis_path()).to_dict()
    document["chain_id"] = "clearchain-bench-sync"
    document["validators"] = [validator_entry(f"v{i}", k.public_key, DEFAULT_VALIDATOR_POWER)
                               for i, k in enumerate(VALIDATORS)]
    document["app_state"]["initial_balances"] = [
        {"address": format_address(s.address), "quote": 10**15} for s in SENDERS]
    return parse_genesis(document)


def build_source(path: Path, blocks: int, txs_per_block: int,
                 snapshots: SnapshotDir) -> tuple[Chain, int, TakenSnapshot]:
    """The chain, its tx count, and the snapshot taken after block ``blocks - 2``."""
    genesis = make_genesis()
    chain = Chain(open_db(str(path)), genesis)
    signers = {Signer(k).address: Signer(k) for k in VALIDATORS}
    total = 0
    taken = None
    for height in range(1, blocks + 1):
        txs = [build_transfer_tx(SENDERS[(height * txs_per_block + i) % len(SENDERS)],
                                 genesis.chain_id, (total + i + 1).to_bytes(20, "big"), "USDC",
                                 1 + i, fee=1000, expiry=height + 100)
               for i in range(txs_per_block)]
        executed = append_block(chain, signers, txs, T0 + height * 1000)
        failed = [r for r in executed.results if r.code != 0]
        if failed:
            raise SystemExit(f"block {height}: tx failed: {failed[0].log}")
        total += len(txs)
        if height == blocks - 2:
            with chain.store.view() as view:
                taken = snapshots.write(view, 1 << 20)
    assert taken is not None
    return chain, total, taken


class SourceHeaders:
    """The light client's two calls, answered from the source chain (trusted here)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def verify_height(self, height: int) -> LightBlock:
        block, commit, validators = (self.chain.block(height), self.chain.commit(height),
                                     self.chain.validators(height))
        assert block is not None and commit is not None and validators is not None
        return LightBlock(block.header, commit, validators)

    def app_hash_after(self, height: int, wait_s: float = 0.0) -> bytes:
        return self.verify_height(height + 1).header.app_hash


def p2p_config(peers: tuple[str, ...] = ()) -> P2PSection:
    return dataclasses.replace(P2PSection(), listen_address="/ip4/127.0.0.1/tcp/0",
                               persistent_peers=peers)


async def serve(source: Chain, snapshots: SnapshotDir, nursery: trio.Nursery) -> Network:
    server = Network(PrivateKey.generate(), p2p_config(), protocols=PROTOCOLS)
    BlockSync(source, server)
    Snapshots(snapshots, source.store, server, interval=0, chunk_bytes=1 << 20)
    await nursery.start(server.run)
    return server


async def block_sync(source: Chain, snapshots: SnapshotDir, target_path: Path) -> tuple[float, Chain]:
    async with trio.open_nursery() as nursery:
        server = await serve(source, snapshots, nursery)
        client = Network(PrivateKey.generate(), p2p_config((server.listen_addrs()[0],)),
                         protocols=PROTOCOLS)
        started = time.perf_counter()
        target = Chain(open_db(str(target_path)), make_genesis())
        sync = BlockSync(target, client)
        await nursery.start(client.run)
        await sync.sync(first_status_wait=10.0)
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    return elapsed, target


async def state_sync(source: Chain, snapshots: SnapshotDir, target_path: Path,
                     work: Path) -> tuple[dict[str, Any], Chain]:
    async with trio.open_nursery() as nursery:
        server = await serve(source, snapshots, nursery)
        client = Network(PrivateKey.generate(), p2p_config((server.listen_addrs()[0],)),
                         protocols=PROTOCOLS)
        started = time.perf_counter()
        db = open_db(str(target_path))
        await nursery.start(client.run)
        while server.peer_id not in client.peers():
            await trio.sleep(0.01)
        asker = Snapshots(SnapshotDir(work / "asker", 1), None, client, interval=0,
                          chunk_bytes=1 << 20)
        report = await StateSync(db, client, asker, light=lambda: SourceHeaders(source),  # type: ignore[arg-type, return-value]
                                 keep_recent=0).run()
        restored = time.perf_counter()
        target = Chain(db, make_genesis())
        opened = time.perf_counter()
        sync = BlockSync(target, client)
        await sync.sync(first_status_wait=10.0)
        finished = time.perf_counter()
        nursery.cancel_scope.cancel()
    return {"seconds": round(finished - started, 3), "restore_s": round(restored - started, 3),
            "open_chain_s": round(opened - restored, 3),
            "block_sync_after_s": round(finished - opened, 3),
            "snapshot_height": report.height, "chunks": report.chunks}, target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=5000)
    parser.add_argument("--txs", type=int, default=20, help="transfers per block, each to a new account")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="clearchain-sync-") as tmp:
        work = Path(tmp)
        snapshots = SnapshotDir(work / "snapshots", keep_recent=1)
        started = time.perf_counter()
        source, total_txs, taken = build_source(work / "source", args.blocks, args.txs, snapshots)
        print(f"source chain: {source.height} blocks, {total_txs} txs, built in "
              f"{time.perf_counter() - started:.1f}s; snapshot of height {taken.manifest.version}: "
              f"{len(taken.manifest.chunk_hashes)} chunks, {taken.size} bytes in {taken.seconds:.2f}s")
        block_s, by_blocks = trio.run(block_sync, source, snapshots, work / "by-blocks")
        if by_blocks.height < source.height - 1:
            raise SystemExit(f"block sync stopped at {by_blocks.height} of {source.height}")
        state, by_state = trio.run(state_sync, source, snapshots, work / "by-state", work)
        for name, chain in (("block", by_blocks), ("state", by_state)):
            if chain.app_hash != source.store.root_at(chain.height):
                raise SystemExit(f"{name} sync ended on another state than the source's")
        synced_blocks = by_blocks.height
        synced_txs = sum(len(by_blocks.block(h).txs) for h in range(1, synced_blocks + 1))
        figures = {
            "blocks": synced_blocks,
            "txs": synced_txs,
            "txs_per_block": args.txs,
            "accounts_created": total_txs,
            "validators": len(VALIDATORS),
            "block_sync": {"seconds": round(block_s, 3),
                           "blocks_per_s": round(synced_blocks / block_s, 1),
                           "txs_per_s": round(synced_txs / block_s, 1)},
            "state_sync": {**state, "snapshot_bytes": taken.size,
                           "snapshot_take_s": round(taken.seconds, 3)},
            "note": "one process serves and syncs over libp2p on 127.0.0.1 (Noise, yamux); block "
                    "sync: each commit of 4 signatures verified, every tx executed, one synced "
                    "LevelDB batch per block; state sync: node.statesync.StateSync (2 s discovery "
                    "included) with the source's headers as its light client, then block sync "
                    "of the blocks after the snapshot",
        }
        source.close()
        by_blocks.close()
        by_state.close()
    print(f"block sync: {synced_blocks} blocks / {synced_txs} txs in {block_s:.2f}s; state sync: "
          f"{state['seconds']:.2f}s (restore {state['restore_s']:.2f}s, open chain "
          f"{state['open_chain_s']:.2f}s, then {state['block_sync_after_s']:.2f}s of block sync)")
    out = ROOT / "bench" / "results" / "sync.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
