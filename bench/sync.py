"""Block sync replay speed: a fresh node fetches, verifies and executes a 1,000+ block chain.

Builds a source chain on LevelDB (4 validators, every block signed by all four, ``--txs`` signed
transfers per block), then starts two libp2p hosts in this process (Noise, yamux, 127.0.0.1):
one serves the source chain, the other block-syncs an empty home from it, verifying each commit
against the validator set, executing every tx through the ClearingApp and storing each block in
one synced LevelDB batch. Both hosts share one process (and so one core): the figure is a lower
bound for a syncing node with its own process.

    .venv/bin/python bench/sync.py [--blocks 1000] [--txs 20] [--accounts 100000]

Then the snapshot half of state sync, on a genesis state of ``--accounts`` funded accounts: the
source node takes a snapshot (``node.snapshots``: a view of the store, chunks written by a
worker), and a second host fetches every chunk over ``/clearchain/snapshot/1`` and restores
them into an empty LevelDB store with the checked restore (``Restorer``: chunk hashes, then the
root against the app hash). Not yet timed: light-client verification and the block sync after
the snapshot height (the node does not start from a snapshot yet; node/README.md).

Prints the figures and writes ``bench/results/sync.json``: ``blocks_per_s``, ``txs_per_s``,
``snapshot``.
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

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from primitives.crypto import PrivateKey, Signer, format_address
from node.blockstore import open_db
from node.blocksync import BlockSync
from node.chain import Chain
from node.init import DEFAULT_VALIDATOR_POWER, default_genesis_path
from node.config import P2PSection
from node.p2p.network import BLOCKSYNC_PROTOCOL, Network
from node.snapshots import SNAPSHOT_PROTOCOL, SnapshotDir, Snapshots
from state.store import MerkleStore
from state.store.snapshot import Restorer
from localnet.synthetic import append_block
from state.builders import build_transfer_tx
from state.genesis import load_genesis, parse_genesis, validator_entry

VALIDATORS = [PrivateKey(bytes([0x10 + i]) * 32) for i in range(4)]
SENDERS = [Signer(PrivateKey(bytes([0x40 + i]) * 32)) for i in range(64)]
T0 = 1_800_000_000_000


def make_genesis(accounts: int = 0):  # type: ignore[no-untyped-def]
    document = load_genesis(default_genesis_path()).to_dict()
    document["chain_id"] = "clearchain-bench-sync"
    document["validators"] = [validator_entry(f"v{i}", k.public_key, DEFAULT_VALIDATOR_POWER)
                               for i, k in enumerate(VALIDATORS)]
    document["app_state"]["initial_balances"] = [
        {"address": format_address(s.address), "quote": 10**15} for s in SENDERS] + [
        {"address": format_address(i.to_bytes(20, "big")), "quote": 10**9}
        for i in range(1, accounts + 1)]
    return parse_genesis(document)


def build_source(path: Path, blocks: int, txs_per_block: int) -> tuple[Chain, int]:
    genesis = make_genesis()
    chain = Chain(open_db(str(path)), genesis)
    signers = {Signer(k).address: Signer(k) for k in VALIDATORS}
    recipient = PrivateKey(b"\xee" * 32).address
    total = 0
    for height in range(1, blocks + 1):
        txs = [build_transfer_tx(SENDERS[(height * txs_per_block + i) % len(SENDERS)], genesis.chain_id,
                                 recipient, "USDC", 1 + i, fee=1000, expiry=height + 100)
               for i in range(txs_per_block)]
        executed = append_block(chain, signers, txs, T0 + height * 1000)
        failed = [r for r in executed.results if r.code != 0]
        if failed:
            raise SystemExit(f"block {height}: tx failed: {failed[0].log}")
        total += len(txs)
    return chain, total


def p2p_config() -> P2PSection:
    return dataclasses.replace(P2PSection(), listen_address="/ip4/127.0.0.1/tcp/0")


async def replay(source: Chain, target: Chain) -> float:
    server_net = Network(PrivateKey.generate(), p2p_config(), protocols=(BLOCKSYNC_PROTOCOL,))
    BlockSync(source, server_net)
    async with trio.open_nursery() as nursery:
        await nursery.start(server_net.run)
        client_config = dataclasses.replace(p2p_config(), persistent_peers=(server_net.listen_addrs()[0],))
        client_net = Network(PrivateKey.generate(), client_config, protocols=(BLOCKSYNC_PROTOCOL,))
        sync = BlockSync(target, client_net)
        await nursery.start(client_net.run)
        await sync.sync(first_status_wait=10.0)  # times the fetch, after the peer answered
        nursery.cancel_scope.cancel()
    return sync.last_fetch_seconds


async def snapshot_sync(source: Chain, snapshots: Path, target: MerkleStore) -> dict[str, float]:
    """Take a snapshot of ``source``'s state, fetch it over p2p and restore it into ``target``."""
    directory = SnapshotDir(snapshots / "server", keep_recent=1)
    server_net = Network(PrivateKey.generate(), p2p_config(), protocols=(SNAPSHOT_PROTOCOL,))
    server = Snapshots(directory, source.store, server_net, interval=1, chunk_bytes=1 << 20)
    async with trio.open_nursery() as nursery:
        await nursery.start(server_net.run)
        await nursery.start(server.run)
        started = time.perf_counter()
        server.after_commit(source.height)
        while not server.taken:
            await trio.sleep(0.01)
        taken_s = time.perf_counter() - started
        client_config = dataclasses.replace(p2p_config(), persistent_peers=(server_net.listen_addrs()[0],))
        client_net = Network(PrivateKey.generate(), client_config, protocols=(SNAPSHOT_PROTOCOL,))
        client = Snapshots(SnapshotDir(snapshots / "client", 1), target, client_net, interval=0,
                           chunk_bytes=1 << 20)
        await nursery.start(client_net.run)
        while server_net.peer_id not in client_net.peers():
            await trio.sleep(0.01)
        started = time.perf_counter()
        manifest = (await client.list_snapshots(server_net.peer_id))[-1]
        restorer = Restorer(manifest, source.app_hash, target)
        for index in range(len(manifest.chunk_hashes)):
            chunk = await client.fetch_chunk(server_net.peer_id, manifest.version, index)
            restorer.apply(index, chunk or b"")
        restorer.finish()
        restore_s = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    return {"take_s": round(taken_s, 3), "fetch_and_restore_s": round(restore_s, 3),
            "chunks": len(manifest.chunk_hashes), "bytes": server.taken[-1].size,
            "keys": restorer.keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=1000)
    parser.add_argument("--txs", type=int, default=20, help="transfers per block")
    parser.add_argument("--accounts", type=int, default=100_000,
                        help="funded accounts in the snapshot's state")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="clearchain-sync-") as tmp:
        started = time.perf_counter()
        source, total_txs = build_source(Path(tmp) / "source", args.blocks, args.txs)
        built = time.perf_counter() - started
        print(f"source chain: {source.height} blocks, {total_txs} txs, built in {built:.1f}s")
        target = Chain(open_db(str(Path(tmp) / "target")), make_genesis())
        elapsed = trio.run(replay, source, target)
        if target.height < source.height - 1:
            raise SystemExit(f"sync stopped at {target.height} of {source.height}")
        if target.app_hash != source.app_hash and target.height == source.height:
            raise SystemExit("synced state differs from the source")
        synced_blocks = target.height
        synced_txs = sum(len(target.block(h).txs) for h in range(1, synced_blocks + 1))
        source.close()
        target.close()
        started = time.perf_counter()
        big = Chain(open_db(str(Path(tmp) / "big")), make_genesis(args.accounts))
        print(f"snapshot source: {args.accounts} accounts at genesis, built in "
              f"{time.perf_counter() - started:.1f}s")
        restored = MerkleStore(open_db(str(Path(tmp) / "restored")))
        snapshot = trio.run(snapshot_sync, big, Path(tmp) / "snapshots", restored)
        snapshot["accounts"] = args.accounts
        big.close()
    figures = {
        "blocks": synced_blocks,
        "txs": synced_txs,
        "txs_per_block": args.txs,
        "validators": len(VALIDATORS),
        "seconds": round(elapsed, 3),
        "blocks_per_s": round(synced_blocks / elapsed, 1),
        "txs_per_s": round(synced_txs / elapsed, 1),
        "note": "one process serves and syncs over libp2p on 127.0.0.1 (Noise, yamux); each block: "
                "commit of 4 signatures verified, every tx executed, one synced LevelDB batch",
        "snapshot": {**snapshot, "note": "take: view + chunks written by the worker thread; "
                     "fetch_and_restore: every chunk over libp2p, checked restore into an empty "
                     "LevelDB store, root compared; light-client check and block sync after it "
                     "not included (not built yet)"},
    }
    print(f"block sync replayed {synced_blocks} blocks / {synced_txs} txs in {elapsed:.2f}s: "
          f"{figures['blocks_per_s']} blocks/s, {figures['txs_per_s']} txs/s")
    out = ROOT / "bench" / "results" / "sync.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"snapshot of {args.accounts} accounts: taken in {snapshot['take_s']}s, fetched and "
          f"restored in {snapshot['fetch_and_restore_s']}s ({snapshot['chunks']} chunks, "
          f"{snapshot['bytes']} bytes)")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
