"""Four validator processes run a few hundred blocks with pruning and snapshots; a fifth
process state-syncs from them (one of which serves bad chunks), block-syncs the rest and
computes the validators' app hashes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from node.config import load_config, replace, save_config
from primitives.crypto import format_address

pytestmark = pytest.mark.slow

NEW = 4
LIAR = 3


def corrupt_chunks(directory: Path, stop: threading.Event) -> None:
    """Flip a byte of every chunk a validator writes (its manifests stay honest)."""
    done: set[Path] = set()
    while not stop.wait(0.05):
        for path in directory.glob("*/chunk-*"):
            if path not in done and path.parent.name.isdigit():  # complete: renamed from .tmp
                data = path.read_bytes()
                path.write_bytes(bytes([data[0] ^ 1]) + data[1:])
                done.add(path)


def test_a_fifth_node_state_syncs_past_a_lying_peer_and_computes_the_same_app_hash(
        cluster_factory) -> None:  # type: ignore[no-untyped-def]
    def funded(document: dict) -> None:  # type: ignore[type-arg]
        # a state of ~40 chunks of 1 KiB, so that every peer serves some
        document["app_state"]["initial_balances"] += [
            {"address": format_address(i.to_bytes(20, "big")), "quote": 10**9}
            for i in range(1, 401)]

    cluster = cluster_factory(validators=4, full_nodes=1, genesis_patch=funded)
    for i in range(4):
        config = load_config(cluster.homes[i].config_file)
        save_config(replace(config, storage={"keep_blocks": 100},
                            statesync={"snapshot_interval": 50, "chunk_bytes": 1024}),
                    cluster.homes[i].config_file)
    stop = threading.Event()
    liar = threading.Thread(target=corrupt_chunks,
                            args=(cluster.homes[LIAR].data_dir / "snapshots", stop), daemon=True)
    liar.start()
    try:
        cluster.start_all()
        cluster.wait_height([0, 1, 2, 3], 300, timeout=600)
        with cluster.client(0) as client:
            trust_height = client.latest_height() - 5
            trust_hash = client.call("commit", height=trust_height)["block_hash"]
        config = load_config(cluster.homes[NEW].config_file)
        save_config(replace(config, statesync={
            "enable": True, "trust_height": trust_height, "trust_hash": trust_hash,
            "rpc_servers": [f"http://127.0.0.1:{cluster.rpc_ports[0]}",
                            f"http://127.0.0.1:{cluster.rpc_ports[1]}"]}),
            cluster.homes[NEW].config_file)
        cluster.start(NEW)
        target = cluster.height(0) + 20
        cluster.wait_height([NEW], target, timeout=300)
    finally:
        stop.set()
    log = cluster.log_text(NEW)
    assert "state sync: restored height" in log
    assert "sent a bad snapshot chunk" in log
    with cluster.client(NEW) as client:
        status = client.call("status")["sync_info"]
        earliest = int(status["earliest_block_height"])
        assert earliest > 1 and (earliest - 1) % 50 == 0  # the snapshot height + 1
        ours = client.call("block_results", height=target - 1)["app_hash"]
    with cluster.client(0) as client:
        assert client.call("block_results", height=target - 1)["app_hash"] == ours
