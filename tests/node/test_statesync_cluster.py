"""Four validator processes run 500+ blocks under a transfer load with pruning and snapshots;
a fifth process state-syncs from them (one of which serves bad chunks), block-syncs the rest
and then holds, at the same height, the validators' app hash and every account they hold."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from node.config import load_config, replace, save_config
from primitives.crypto import format_address
from state.builders import build_transfer_tx
from state.model import account_key

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # CI machines run it ~3x slower

NEW = 4
LIAR = 3
FUNDED = [i.to_bytes(20, "big") for i in range(1, 401)]


def corrupt_chunks(directory: Path, stop: threading.Event) -> None:
    """Flip a byte of every chunk a validator writes (its manifests stay honest)."""
    done: set[Path] = set()
    while not stop.wait(0.05):
        try:
            chunks = list(directory.glob("*/chunk-*"))
        except OSError:  # a snapshot directory renamed or pruned during the walk: next tick
            continue
        for path in chunks:
            if path not in done and path.parent.name.isdigit():  # complete: renamed from .tmp
                try:
                    data = path.read_bytes()
                    path.write_bytes(bytes([data[0] ^ 1]) + data[1:])
                except OSError:  # pruned (an old snapshot) between glob and read: skip it
                    continue
                done.add(path)


def stored_accounts(client, addresses: list[bytes], height: int) -> dict[bytes, str]:  # type: ignore[no-untyped-def]
    """Each account's record in the state store at ``height`` (base64, as the node answers)."""
    out = {}
    for address in addresses:
        answer = client.call("query", path="/store", data=account_key(address).hex(),
                             height=height)["response"]
        assert answer["code"] == 0 and answer["value"], answer
        out[address] = answer["value"]
    return out


def send_transfers(cluster, stop: threading.Event, sent: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Validators pay seeded random amounts to random funded accounts until ``stop``, so the
    synced state holds balances that blocks after genesis wrote, not only genesis ones."""
    rng = random.Random(7)
    signers = [cluster.signer(i) for i in range(4)]
    while not stop.wait(0.1):
        i = rng.randrange(4)
        try:
            with cluster.client(i) as client:
                tx = build_transfer_tx(signers[i], cluster.chain_id, rng.choice(FUNDED), "USDC",
                                       rng.randrange(1, 10**6), fee=1000,
                                       expiry=client.latest_height() + 100)
                if int(client.broadcast_tx_sync(tx)["code"]) == 0:
                    sent.append(tx.hex())
        except Exception:  # noqa: BLE001 - a node busy or restarting: the next tick retries
            continue


def test_a_fifth_node_state_syncs_past_a_lying_peer_and_holds_the_validators_state(
        cluster_factory) -> None:  # type: ignore[no-untyped-def]
    def funded(document: dict) -> None:  # type: ignore[type-arg]
        # a state of ~40 chunks of 1 KiB, so that every peer serves some
        document["app_state"]["initial_balances"] += [
            {"address": format_address(address), "quote": 10**9}
            for address in FUNDED]

    cluster = cluster_factory(validators=4, full_nodes=1, genesis_patch=funded)
    for i in range(4):
        config = load_config(cluster.homes[i].config_file)
        save_config(replace(config, storage={"keep_blocks": 100},
                            statesync={"snapshot_interval": 50, "chunk_bytes": 1024}),
                    cluster.homes[i].config_file)
    stop = threading.Event()
    sent: list[str] = []
    liar = threading.Thread(target=corrupt_chunks,
                            args=(cluster.homes[LIAR].data_dir / "snapshots", stop), daemon=True)
    load = threading.Thread(target=send_transfers, args=(cluster, stop, sent), daemon=True)
    liar.start()
    try:
        cluster.start_all()
        cluster.wait_height([0, 1, 2, 3], 2, timeout=120)
        load.start()
        cluster.wait_height([0, 1, 2, 3], 520, timeout=900)
        with cluster.client(0) as client:
            trust_height = client.latest_height() - 5
            trust_hash = client.call("commit", height=trust_height)["signed_header"]["commit"]["block_id"]["hash"]
        config = load_config(cluster.homes[NEW].config_file)
        save_config(replace(config, statesync={
            "enable": True, "trust_height": trust_height, "trust_hash": trust_hash,
            "rpc_servers": [f"http://127.0.0.1:{cluster.rpc_ports[0]}",
                            f"http://127.0.0.1:{cluster.rpc_ports[1]}"]}),
            cluster.homes[NEW].config_file)
        cluster.start(NEW)
        target = cluster.height(0) + 20
        cluster.wait_height([NEW], target, timeout=300)
        with cluster.client(NEW) as client:  # restored at a snapshot: block-sync blocks after it
            restored = int(client.call("status")["sync_info"]["earliest_block_height"]) - 1
        cluster.wait_height([NEW], restored + 10, timeout=300)
    finally:
        stop.set()
        if load.is_alive():
            load.join(timeout=10)
    assert len(sent) > 100, f"only {len(sent)} transfers were accepted"
    everyone = FUNDED + [cluster.keys[i].address for i in range(4)]
    log = cluster.log_text(NEW)
    assert "state sync: restored height" in log
    assert "sent a bad snapshot chunk" in log
    with cluster.client(NEW) as client:
        status = client.call("status")["sync_info"]
        earliest = int(status["earliest_block_height"])
        assert earliest > 1 and (earliest - 1) % 50 == 0  # the snapshot height + 1
        height = int(status["latest_block_height"]) - 1  # restored and then block-synced to
        assert height >= max(earliest, target - 1)
        ours = client.call("block_results", height=height)["app_hash"]
        accounts = stored_accounts(client, everyone, height)
    with cluster.client(0) as client:
        assert client.call("block_results", height=height)["app_hash"] == ours
        theirs = stored_accounts(client, everyone, height)
    assert accounts == theirs
    assert len({str(accounts[a]) for a in FUNDED}) > 50, "the load moved too few balances"
