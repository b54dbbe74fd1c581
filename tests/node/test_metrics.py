"""node/metrics.py: the Prometheus endpoint of a node, read with prometheus_client's own parser."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from node.config import Config
from node.metrics import NodeMetrics, near_margin_accounts
from primitives.crypto import PrivateKey, Signer
from state.builders import build_transfer_tx
from state.risk import risk_of
from tests.state.test_risk import BTC, funded, trade
from tests.node.test_node_inprocess import make_node, wait_for


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as ``(name, sorted labels) -> value``."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/plain")
        return parse(response.read().decode())


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_are_off_by_default() -> None:
    assert Config().instrumentation.prometheus is False
    assert Config().instrumentation.prometheus_listen_addr == "127.0.0.1:26660"


def test_each_node_has_its_own_registry() -> None:
    a, b = NodeMetrics(), NodeMetrics()
    a.height.set(5)
    assert b"clearchain_consensus_height 0.0" in b.exposition()
    assert b"clearchain_consensus_height 5.0" in a.exposition()


async def test_a_node_serves_its_metrics(tmp_path: Path) -> None:
    node = make_node(tmp_path, instrumentation={"prometheus": True,
                                                "prometheus_listen_addr": "127.0.0.1:0"})
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.chain.height >= 2)
        signer = Signer(node.validator_key)
        tx = build_transfer_tx(signer, node.chain.chain_id, PrivateKey(b"\x09" * 32).address,
                               "USDC", 5, fee=1000, expiry=node.chain.height + 50)
        assert (await node.view.broadcast_tx(tx)).code == 0
        duplicate = await node.view.broadcast_tx(tx)
        assert duplicate.code != 0
        await wait_for(lambda: len(node.mempool) == 0)
        url = f"http://127.0.0.1:{node.metrics_port}/metrics"
        samples = await trio.to_thread.run_sync(scrape, url)
        height = value(samples, "clearchain_consensus_height")
        assert 2 <= height <= node.chain.height
        assert value(samples, "clearchain_consensus_validators") == 1
        assert value(samples, "clearchain_consensus_missing_validators") == 0
        assert value(samples, "clearchain_consensus_total_txs_total") >= 1
        assert value(samples, "clearchain_mempool_rejected_txs_total", code=str(duplicate.code)) == 1
        assert value(samples, "clearchain_state_block_processing_time_seconds_count") >= 2
        assert value(samples, "clearchain_state_store_bytes_written_sum") > 0
        assert value(samples, "clearchain_p2p_peers") == 0
        prices = await node.view.prices(None)
        for market_id, price in prices.items():
            assert value(samples, "clearchain_clearing_oracle_price", market=market_id) == price["price"]
            assert value(samples, "clearchain_clearing_breaker_state", market=market_id) == 0
        fund = await node.view.insurance_fund(None)
        assert value(samples, "clearchain_clearing_insurance_fund") == fund["insurance_fund"]
        assert value(samples, "clearchain_clearing_accounts_near_margin") == 0
        assert await trio.to_thread.run_sync(status_of, url.replace("/metrics", "/nothing")) == 404
        nursery.cancel_scope.cancel()


async def test_rpc_calls_are_counted_per_method(tmp_path: Path) -> None:
    from rpc.client import AsyncClient

    node = make_node(tmp_path, instrumentation={"prometheus": True,
                                                "prometheus_listen_addr": "127.0.0.1:0"})
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.chain.height >= 1)
        client = AsyncClient(f"http://127.0.0.1:{node.rpc_port}", timeout=5)
        for _ in range(3):
            await client.call("status")
        with pytest.raises(Exception):
            await client.call("block", height=10**9 + 7)
        samples = await trio.to_thread.run_sync(
            scrape, f"http://127.0.0.1:{node.metrics_port}/metrics")
        assert value(samples, "clearchain_rpc_requests_total", method="status") == 3
        assert value(samples, "clearchain_rpc_request_duration_seconds_count", method="status") == 3
        assert value(samples, "clearchain_rpc_errors_total", method="block") == 1
        assert value(samples, "clearchain_rpc_open_websockets") == 0
        await client.aclose()
        nursery.cancel_scope.cancel()


def _near_by_brute_force(app: Any) -> int:
    ledger, near = app.ledger, 0
    for account in ledger.accounts.values():
        if account.positions:
            equity, _imr, mmr = risk_of(account, ledger.markets, ledger.pricing)
            near += equity * 10 < mmr * 11
    return near


def test_near_margin_count_from_the_liquidation_index_matches_every_account_checked() -> None:
    chain = funded()
    assert chain.one(trade(chain, "alice", "bob", 180_000)).ok  # alice long 9x, bob short
    counts = []
    for price in (480_000, 462_000, 459_500, 459_000):  # alice nears her MMR from 459,620 down
        chain.block(chain.prices({BTC: price}))
        chain.block()
        near, capped = near_margin_accounts(chain.app)
        assert (near, capped) == (_near_by_brute_force(chain.app), False)
        counts.append(near)
    assert counts == [0, 0, 1, 1]
    assert near_margin_accounts(chain.app, limit=0) == (0, True)  # the scan's bound is reported
