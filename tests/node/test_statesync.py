"""node/statesync.py: an empty node restores a snapshot checked by the light client, skips
the peer serving bad chunks, then block-syncs and follows the chain."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import trio

from node.config import Config, P2PSection, replace
from node.home import Home
from node.init import init_home
from node.node import PROTOCOLS, Node
from node.p2p.network import Network
from node.snapshots import SnapshotDir, Snapshots
from primitives.crypto import PrivateKey
from state.store import MemoryDB, MerkleStore
from tests.node.test_node_inprocess import make_node, wait_for


class LyingDir(SnapshotDir):
    """Another node's snapshots, every chunk flipped (never cleans the directory it reads)."""

    def __init__(self, root: Path) -> None:
        self.root, self.keep_recent = root, 2

    def chunk(self, height: int, index: int) -> bytes | None:
        data = super().chunk(height, index)
        return None if data is None else bytes([data[0] ^ 1]) + data[1:]


def liar(directory: Path, address: str) -> tuple[Network, Snapshots]:
    config = dataclasses.replace(P2PSection(), listen_address="/ip4/127.0.0.1/tcp/0",
                                 persistent_peers=(address,), dial_backoff_min_ms=50,
                                 dial_backoff_max_ms=100)
    network = Network(PrivateKey.generate(), config, protocols=PROTOCOLS)
    return network, Snapshots(LyingDir(directory), MerkleStore(MemoryDB()), network,
                              interval=0, chunk_bytes=1 << 20)


async def test_a_new_node_state_syncs_past_a_lying_peer_and_follows_the_chain(
        tmp_path: Path) -> None:
    validator = make_node(tmp_path / "a", storage={"keep_blocks": 60},
                          consensus={"timeout_commit_ms": 150},
                          statesync={"snapshot_interval": 10, "chunk_bytes": 1024})
    async with trio.open_nursery() as nursery:
        await nursery.start(validator.run)
        await wait_for(lambda: len(validator.snapshots.taken) >= 1, timeout=120)
        lying_net, _ = liar(validator.home.data_dir / "snapshots",
                            validator.network.listen_addrs()[0])
        await nursery.start(lying_net.run)
        trust_height = validator.chain.height - 1
        trust_hash = validator.chain.block(trust_height).hash().hex()
        home = Home.at(tmp_path / "b")
        config = replace(
            Config(), p2p={"listen_address": "/ip4/127.0.0.1/tcp/0",
                           "persistent_peers": [validator.network.listen_addrs()[0],
                                                lying_net.listen_addrs()[0]]},
            rpc={"listen_address": "127.0.0.1:0"},
            statesync={"enable": True, "trust_height": trust_height, "trust_hash": trust_hash,
                       "rpc_servers": [f"http://127.0.0.1:{validator.rpc_port}"]})
        genesis = json.loads(validator.home.genesis_file.read_text())
        init_home(home, moniker="b", genesis=genesis, add_self_as_validator=False, config=config)
        syncing = Node(home)
        with trio.fail_after(180):
            await nursery.start(syncing.run)
        assert syncing.statesync is not None
        report = syncing.statesync.report
        assert report.height % 10 == 0 and report.height >= trust_height - 10
        assert lying_net.peer_id in report.dropped_peers
        assert syncing.chain.earliest_height == report.height + 1
        assert syncing.chain.store.oldest_version == report.height
        await wait_for(lambda: syncing.chain.height >= report.height + 8, timeout=120)
        height = syncing.chain.height - 1
        assert syncing.chain.store.root_at(height) == validator.chain.store.root_at(height)
        assert (await syncing.view.status()).earliest_block_height == report.height + 1
        await wait_for(lambda: not syncing.catching_up, timeout=60)
        nursery.cancel_scope.cancel()
