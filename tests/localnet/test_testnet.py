"""``clearchain testnet``: homes, genesis, ports, peers and manifest (fast), and the end-to-end
demo on 4 real validator processes (slow; skipped until ``clearchain start`` exists)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
import trio

from cli.main import main
from node.config import load_config
from node.home import Home
from localnet import testnet as localnet_testnet
from localnet.testnet import MANIFEST, create_testnet, read_manifest, same_app_hash
from client import AsyncClient
from client.errors import ConnectionFailed
from primitives.crypto import format_address
from localnet.demo import check_invariants, demo_names, demo_signer
from state.genesis import load_genesis


def free_base_port() -> int:
    return 28000 + (os.getpid() % 500) * 8


def test_create_testnet_reports_each_home_as_it_is_written(tmp_path: Path):
    written: list[str] = []

    def on_home(name: str) -> None:  # the home and its keys exist when it is reported
        assert Home.at(tmp_path / name).validator_key_file.exists()
        written.append(name)

    create_testnet(tmp_path, 3, free_base_port(), "tn-progress-1", on_home=on_home)
    assert written == ["node0", "node1", "node2"]


def test_create_testnet_writes_homes_genesis_peers_and_manifest(tmp_path: Path):
    entries = create_testnet(tmp_path, 4, free_base_port(), "tn-test-1")
    assert [e.name for e in entries] == ["node0", "node1", "node2", "node3"]
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert [n["rpc_url"] for n in manifest["nodes"]] == [e.rpc_url for e in entries]
    assert read_manifest(tmp_path)[2].p2p_address == entries[2].p2p_address
    geneses = {(Path(e.home) / "config" / "genesis.json").read_text() for e in entries}
    assert len(geneses) == 1  # one genesis, byte for byte
    genesis = load_genesis(Path(entries[0].home) / "config" / "genesis.json")
    assert genesis.chain_id == "tn-test-1" and len(genesis.validators) == 4
    assert {v.pub_key for v in genesis.validators} == {Home.at(e.home).validator_key().public_key for e in entries}
    funded = {b.address for b in genesis.app_state.initial_balances}
    assert {demo_signer(n).address for n in demo_names()} <= funded
    ports = set()
    for i, entry in enumerate(entries):
        config = load_config(Path(entry.home) / "config" / "config.toml")
        ports.add(config.rpc.listen_address)
        ports.add(config.p2p.listen_address)
        assert set(config.p2p.persistent_peers) == {e.p2p_address for j, e in enumerate(entries) if j != i}
    assert len(ports) == 8
    metrics = {load_config(Path(e.home) / "config" / "config.toml").instrumentation for e in entries}
    assert all(m.prometheus for m in metrics) and len(metrics) == 4
    assert [e.metrics_url for e in read_manifest(tmp_path)] == [
        f"http://{m.prometheus_listen_addr}/metrics"
        for m in (load_config(Path(e.home) / "config" / "config.toml").instrumentation for e in entries)]
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == sorted(f"{n}.json" for n in demo_names())


async def exercise_every_method(client: AsyncClient, height: int) -> None:
    """Every method once on a real node (normal path), and the error paths that matter."""
    import base64

    from primitives import codec
    from rpc import errors
    from rpc.client import RPCClientError
    from rpc.methods import METHODS

    block = await client.call("block", height=height)
    tx_b64 = ""
    for h in range(height, 0, -1):  # the latest committed tx
        txs = (await client.call("block", height=h))["block"]["data"]["txs"]
        if txs:
            tx_b64 = txs[0]
            break
    tx = base64.b64decode(tx_b64)
    tx_hash = hashlib.sha256(tx).hexdigest()
    long0 = format_address(demo_signer("short-0").address)  # deep pockets: never wiped out
    calls = {
        "health": {}, "status": {}, "net_info": {}, "genesis": {}, "validators": {"height": height},
        "block": {"height": height}, "block_by_hash": {"hash": block["block_id"]["hash"]},
        "blockchain": {"minHeight": max(1, height - 5), "maxHeight": height}, "block_results": {"height": height},
        "commit": {"height": height}, "check_tx": {"tx": tx_b64}, "tx": {"hash": tx_hash},
        "unconfirmed_txs": {}, "num_unconfirmed_txs": {}, "query": {"data": "00", "prove": True},
        "abci_query": {"data": "00"}, "account": {"address": long0}, "positions": {"address": long0},
        "markets": {}, "market": {"market": "BTC-PERP"}, "prices": {}, "insurance_fund": {},
        "liquidations": {"min_height": 1, "max_height": height}, "account_health": {"address": long0},
        "check_margin": {"address": long0, "market": "BTC-PERP", "side": "buy", "size": 10},
        "assets": {}, "accounts_at_risk": {"per_page": 5},
        "header": {"height": height}, "header_by_hash": {"hash": block["block_id"]["hash"]},
        "tx_search": {"query": f"tx.hash='{tx_hash}'"}, "block_search": {"query": f"block.height={height}"},
        "abci_info": {}, "consensus_params": {}, "consensus_state": {},
    }
    for method, params in calls.items():
        assert await client.call(method, **params) is not None, method
    ws_only = {"subscribe", "unsubscribe", "unsubscribe_all"}
    broadcast = {"broadcast_tx_async", "broadcast_tx_sync", "broadcast_tx_commit"}
    assert set(METHODS) - ws_only - broadcast == set(calls)
    # the typed client parses every answer of the real node
    typed = {
        "health": client.health(), "status": client.status(), "net_info": client.net_info(),
        "genesis": client.genesis(), "validators": client.validators(height), "block": client.block(height),
        "block_by_hash": client.block_by_hash(block["block_id"]["hash"]),
        "blockchain": client.blockchain(max(1, height - 5), height), "block_results": client.block_results(height),
        "commit": client.commit(height), "check_tx": client.check_tx(tx), "tx": client.tx(tx_hash),
        "unconfirmed_txs": client.unconfirmed_txs(), "num_unconfirmed_txs": client.num_unconfirmed_txs(),
        "query": client.query(data=b"\x00", prove=True), "abci_query": client.abci_query(data=b"\x00"),
        "account": client.account(long0), "positions": client.positions(long0), "markets": client.markets(),
        "market": client.market("BTC-PERP"), "prices": client.prices(), "insurance_fund": client.insurance_fund(),
        "liquidations": client.liquidations(1, height), "account_health": client.account_health(long0),
        "check_margin": client.check_margin(long0, "BTC-PERP", "buy", 10),
        "assets": client.assets(), "accounts_at_risk": client.accounts_at_risk(per_page=5),
        "header": client.header(height), "header_by_hash": client.header_by_hash(block["block_id"]["hash"]),
        "tx_search": client.tx_search(f"tx.hash='{tx_hash}'"),
        "block_search": client.block_search(f"block.height={height}"), "abci_info": client.abci_info(),
        "consensus_params": client.consensus_params(), "consensus_state": client.consensus_state(),
    }
    answers = {method: await pending for method, pending in typed.items()}
    assert answers["header"] == answers["header_by_hash"] and answers["header"].height == height
    assert [t.hash.hex() for t in answers["tx_search"].txs] == [tx_hash.lower()]
    assert [b.height for b in answers["block_search"].blocks] == [height]
    assert answers["abci_info"].last_block_height >= height and answers["consensus_state"].height > height
    assert set(answers) == set(calls)
    assert answers["block"].height == height and answers["block"].header.time_ns > 0
    assert answers["commit"].header == answers["block"].header
    assert all(s.block_id_flag in (1, 2, 3) for s in answers["commit"].commit.signatures)
    assert answers["commit"].commit.signatures and answers["genesis"].validators
    assert answers["tx"].hash.hex() == tx_hash and answers["status"].latest_block_time_ns > 0
    # replays and bad signatures get the application's code; the node keeps serving
    replay = await client.call("broadcast_tx_sync", tx=tx_b64)  # seen (12), or past its expiry (10)
    assert replay["code"] in (10, 12) or replay["codespace"] == "mempool", replay
    envelope = codec.decode(tx)
    envelope["sig"] = bytes(64)
    bad = base64.b64encode(codec.encode(envelope)).decode()
    assert (await client.call("broadcast_tx_commit", tx=bad))["check_tx"]["code"] == 4  # BAD_SIGNATURE
    assert (await client.call("broadcast_tx_async", tx=bad))["hash"]
    for method, params, code in [("block", {"height": 10**9}, errors.NOT_FOUND),
                                 ("tx", {"hash": "00" * 32}, errors.NOT_FOUND),
                                 ("broadcast_tx_sync", {"tx": "%%"}, errors.INVALID_PARAMS),
                                 ("account", {"address": "clr1bad"}, errors.INVALID_PARAMS),
                                 ("nope", {}, errors.METHOD_NOT_FOUND)]:
        with pytest.raises(RPCClientError) as info:
            await client.call(method, **params)
        assert info.value.code in (code, errors.UNAVAILABLE), (method, info.value)
    assert await client.call("health") == {}


def _has_start_command() -> bool:
    return "start" in main.commands


@pytest.mark.slow
@pytest.mark.skipif(not _has_start_command(), reason="clearchain start is not available yet")
async def test_testnet_demo_end_to_end(tmp_path: Path):
    """4 validators + demo: trades clear, >= 1 liquidation, same app hash everywhere, invariants
    hold (checked here through RPC), and Ctrl-C stops every node; a second run resumes."""
    directory = tmp_path / "tn"
    command = [sys.executable, "-m", "cli", "testnet", "--validators", "4", "--dir", str(directory),
               "--demo", "--demo-seconds", "60", "--duration", "400", "--no-progress",
               "--base-port", str(free_base_port())]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    received: dict[str, list] = {"NewBlock": [], "Liquidation": []}

    async def listen(url: str, kind: str, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with AsyncClient(url) as client, client.subscribe(f"tm.event='{kind}'") as events:
            task_status.started()
            async for event in events:
                received[kind].append(event)

    try:
        with trio.fail_after(200):
            while not (directory / MANIFEST).exists() or read_manifest(directory)[0].pid is None:
                assert proc.poll() is None, "".join(lines[-40:])
                await trio.sleep(0.5)
            url = read_manifest(directory)[0].rpc_url
            async with trio.open_nursery() as nursery:
                while True:  # the node's RPC comes up a moment after its process
                    try:
                        await nursery.start(listen, url, "NewBlock")
                        await nursery.start(listen, url, "Liquidation")
                        break
                    except (ConnectionFailed, OSError):
                        await trio.sleep(0.5)
                while not any("summary:" in line for line in lines):
                    assert proc.poll() is None, "".join(lines[-40:])
                    await trio.sleep(1)
                nursery.cancel_scope.cancel()
        assert received["NewBlock"] and received["Liquidation"]  # events from the real run, over /websocket
        first_liquidation = received["Liquidation"][0]["data"]["value"]["event"]
        assert first_liquidation["type"] == "liquidation" and first_liquidation["attrs"]["account"].startswith("clr1")
        entries = read_manifest(directory)
        clients = [AsyncClient(e.rpc_url) for e in entries]
        try:
            height, hashes = await same_app_hash(clients)
            assert height > 1 and len(set(hashes.values())) == 1, hashes
            first = clients[0]
            liquidations = await first.call("liquidations")
            assert int(liquidations["total"]) >= 1
            # the waterfall's order: a loss reaches a deleveraged trader only once the fund is dry
            items, page = [], 1
            while page == 1 or len(items) < min(int(liquidations["total"]), 2_000):
                batch = (await first.call("liquidations", page=page, per_page=100))["liquidations"]
                if not batch:
                    break
                items += batch
                page += 1
            fund_seen = None
            for item in items:
                attrs = item["attrs"]
                if item["type"] == "insurance_cover":
                    fund_seen = int(attrs["fund_left"])
                elif item["type"] == "liquidation_fee":
                    fund_seen = int(attrs["fund"])
                elif item["type"] == "deleverage" and int(attrs["charge"]) > 0:
                    assert fund_seen is not None and fund_seen <= 0, (fund_seen, item)
            trades = 0
            for h in range(1, height + 1):
                results = await first.call("block_results", height=h)
                trades += sum(1 for r in results["txs_results"] or () if r["code"] == 0
                              and any(e["type"] == "trade" for e in r["events"]))
            assert trades > 0
            validators = [Home.at(e.home).validator_key().address for e in entries]
            addresses = [demo_signer(n).address for n in demo_names()] + validators
            assert await check_invariants(first, addresses) == []
            await exercise_every_method(clients[1], height)
        finally:
            for client in clients:
                await client.aclose()
        proc.send_signal(signal.SIGINT)
        with trio.fail_after(40):
            while proc.poll() is None:
                await trio.sleep(0.2)
        for entry in read_manifest(directory):
            assert entry.pid is None
        assert "all nodes stopped" in "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)
        proc.stdout.close()
    # resume: the same DIR continues the chain from where it stopped
    again = await trio.to_thread.run_sync(lambda: subprocess.run(
        command[:8] + ["--duration", "30", "--no-progress"], capture_output=True, text=True, timeout=120,
        check=False))
    assert "resuming the testnet" in again.stdout, again.stdout[-2000:]
    resumed = [int(h) for h in re.findall(r"node0 h=(\d+)", again.stdout)]
    assert resumed and max(resumed) > height, again.stdout[-2000:]



@pytest.mark.slow
async def test_a_live_testnets_metrics_agree_with_its_rpc(tmp_path: Path):
    """4 validator processes from ``create_testnet``: each node's /metrics, read with
    prometheus_client's parser, agrees with its RPC on height, peers, prices and the fund."""
    from prometheus_client.parser import text_string_to_metric_families

    from localnet.testnet import Processes

    def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    entries = create_testnet(tmp_path, 4, free_base_port() + 4000, "tn-metrics-1")
    processes = Processes(tmp_path, entries)
    clients = [AsyncClient(e.rpc_url, timeout=10) for e in entries]
    processes.start()
    try:
        with trio.fail_after(120):  # four processes starting on two shared cores
            for client in clients:
                while True:
                    try:
                        if await client.latest_height() >= 3:
                            break
                    except (ConnectionFailed, OSError):
                        pass
                    assert not processes.exited(), processes.exited()
                    await trio.sleep(0.5)
        for entry, client in zip(entries, clients):
            before = await client.latest_height()
            samples = await trio.to_thread.run_sync(scrape, entry.metrics_url)
            after = await client.latest_height()
            assert before <= samples[("clearchain_consensus_height", ())] <= after
            peers = (await client.call("net_info"))["n_peers"]
            assert samples[("clearchain_p2p_peers", ())] == int(peers) == 3
            assert samples[("clearchain_consensus_validators", ())] == 4
            for protocol in ("/clearchain/consensus/1",):
                key = ("clearchain_p2p_bytes_sent_total", (("protocol", protocol),))
                assert samples[key] > 0
            prices = await client.call("prices")
            assert prices
            for market, price in prices.items():
                key = ("clearchain_clearing_oracle_price", (("market", market),))
                assert samples[key] == int(price["price"])
            fund = await client.call("insurance_fund")
            assert samples[("clearchain_clearing_insurance_fund", ())] == int(fund["insurance_fund"])
            assert samples[("clearchain_rpc_requests_total", (("method", "status"),))] >= 1
    finally:
        for client in clients:
            await client.aclose()
        processes.stop()


def _leave_time_wait(port: int) -> None:
    """Serve one connection on ``port`` and close it from the server side first, as a stopped
    node does: the port's connection then sits in TIME-WAIT for a minute."""
    import socket
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        with socket.create_connection(("127.0.0.1", port)) as client:
            served, _ = listener.accept()
            served.close()  # the active close: TIME-WAIT is on the server's side of the port
            client.recv(1)
    states = subprocess.run(["ss", "-tan", f"sport = :{port}"], capture_output=True, text=True).stdout
    assert "TIME-WAIT" in states, states


def test_a_testnet_recreated_right_after_a_stop_reuses_its_ports(tmp_path: Path) -> None:
    import socket

    def unused(port: int) -> bool:  # nothing bound, listening or lingering there (other tests run beside)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
        return True

    base = next(b for b in range(40000 + os.getpid() % 1000 * 16, 65000, 16)
                if all(unused(b + k) for k in range(3)))
    _leave_time_wait(base)
    create_testnet(tmp_path / "again", 1, base, "clearchain-test-1")  # no "ports in use"
    with socket.socket() as live:  # a port someone listens on is still refused
        live.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        live.bind(("127.0.0.1", base + 1))
        live.listen()
        with pytest.raises(localnet_testnet.TestnetError, match=rf"ports \[{base + 1}\] are in use"):
            create_testnet(tmp_path / "busy", 1, base, "clearchain-test-1")
