"""``clearchain status``: sync progress as % and ETA, against the dev node."""

from __future__ import annotations

import json
import time

import trio

from localnet.dev_node import DevNode, dev_genesis
from rpc.server import RPCServer
from tests.cli.conftest import VALIDATOR
from tests.cli.test_tx_and_query import run_cli


async def test_a_node_in_sync_is_at_100_percent(chain):
    code, out = await run_cli("status", "--node", chain.url, "--sample", "0")
    assert code == 0 and "100.0%" in out and "ETA" in out and "0s" in out, out


async def test_progress_against_a_node_ahead(chain, nursery):
    """The dev node at height 3, a reference at 12: 25.0% by height; with a rate, an ETA."""
    ahead = DevNode(dev_genesis(VALIDATOR, int(time.time() * 1000) - 1000), VALIDATOR)
    port = await nursery.start(RPCServer(ahead).serve, "127.0.0.1", 0)
    for _ in range(12):
        ahead.make_block()
    chain.node.make_block()
    chain.node.make_block()
    code, out = await run_cli("status", "--node", chain.url, "--against", f"http://127.0.0.1:{port}",
                              "--sample", "0", "--json")
    report = json.loads(out)
    assert code == 0 and report["height"] == 3 and report["target"] == 12 and report["percent"] == 25.0
    assert report["eta_s"] is None  # no sample, no rate

    async def two_blocks_a_while_later():
        await trio.sleep(0.3)
        chain.node.make_block()
        chain.node.make_block()

    nursery.start_soon(two_blocks_a_while_later)
    code, out = await run_cli("status", "--node", chain.url, "--against", f"http://127.0.0.1:{port}",
                              "--sample", "0.8")
    assert code == 0 and "41.7%" in out, out   # 5 of 12
    # 2 blocks in ~0.8 s, 7 left: an ETA of a few seconds, not "unknown"
    assert "unknown" not in out and "blocks/s" in out, out


def test_without_a_target_progress_is_measured_by_block_time():
    """Earliest block at t=0, now t=1000 s; the node's latest block went from t=400 s to t=500 s in
    10 s of watching: 50%, 10 s of chain per second, 500 s of chain left: ETA 50 s."""
    from dataclasses import replace

    from client.results import PubKey, Status
    from cli.status import by_block_time

    second = 1_000_000_000
    first = Status("id", "chain", "m", "v", "", 40, b"", b"", 400 * second, 1, True, b"", PubKey("", b""), 0)
    latest = replace(first, latest_block_height=50, latest_block_time_ns=500 * second)
    report = by_block_time(latest, first, 10.0, 0, 1_000 * second)
    assert report["percent"] == 50.0 and report["rate"] == 10.0 and report["eta_s"] == 50.0
    assert report["target"] is None and report["measured_by"] == "block time"
